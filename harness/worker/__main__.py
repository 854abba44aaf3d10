"""``python -m harness.worker TASK.json RESULT.json``: one cell, in its own process."""

import sys

from .cell import main

sys.exit(main())
