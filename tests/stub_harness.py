"""``python -m tests.stub_harness ARGS``: the harness's CLI whose workers are the stub
(tests/stub_worker.py), for the runner's own tests (faults, resume, shards, A/B, calibration)
without a backend. Only a test starts it; the product has no switch that names another worker.
"""

from __future__ import annotations

import sys

from harness import cli
from harness.orchestrate import runner

runner.WORKER_MODULE = "tests.stub_worker"

if __name__ == "__main__":
    sys.exit(cli.main())
