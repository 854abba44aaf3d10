"""A stand-in for ``harness.worker`` that needs no backend, for the runner's own fault tests.

It speaks the worker's protocol (``TASK.json RESULT.json --events-fd N``: phase events on the
pipe, the result file rewritten after phases, ``finished`` set last) and ties itself to its
parent the same way, so SIGKILL, SIGTERM, Ctrl-C, time limits and ``--resume`` are tested in
a fraction of a second per cell. The runner starts it under tests/stub_harness.py.

``HARNESS_STUB`` (JSON) sets its behaviour:
    fit_seconds: seconds of "fit" per epoch of the cell (default 0.05);
    ignore_sigterm: the worker ignores SIGTERM, so stopping it takes the runner's SIGKILL;
    child: a file to write the pid of a child process that ignores SIGTERM and sleeps;
    fail_cells: cell ids whose worker exits with code 3 after the data phase;
    fail_process: in a multi-process cell, the process (KERAS_DISTRIBUTION_PROCESS_ID) that
        exits with code 3 in its fit, once the file ``fail_after`` exists (the test makes it
        when it has seen the others fitting);
    outcomes: cell id -> {"status", "reason", "phase", "stderr"}: the cell ends so (skipped,
        unsupported, failed) in that phase, as the worker records it, after writing "stderr"
        to its log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import lifeline, results
from harness.gate import stats
from harness.protocol import Task
from harness.worker import cell as worker


def main(argv: list[str] | None = None) -> int:
    lifeline.tie_to_parent()
    args = worker.parse_args(argv)  # numpy, but no keras: the worker imports that in a phase
    task = Task.read(args.task).to_json()
    task.update(ab=task["options"]["ab"])
    opts = json.loads(os.environ.get("HARNESS_STUB") or "{}")
    # Only the first process of a cell reports its phases.
    events = os.fdopen(args.events_fd if args.events_fd is not None else os.open(os.devnull, os.O_WRONLY), "w", buffering=1)  # fmt: skip
    process = int(os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", "0"))
    cell = task["cell"]
    doc = results.new_result(cell, task["backend"], task["scenario"])
    doc.update(run_id=task.get("run_id"), environment=task.get("environment", {}), stub=True)
    for key in ("ab", "shard"):
        if task.get(key):
            doc[key] = task[key]
    if "KERAS_DISTRIBUTION_JOB_ADDRESSES" in os.environ:  # what a multi-process worker joins
        doc["joined"] = os.environ["KERAS_DISTRIBUTION_JOB_ADDRESSES"]

    def phase(name: str, **extra) -> None:
        doc["phase"] = name
        events.write(json.dumps({"event": "phase", "phase": name, **extra}) + "\n")

    if opts.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if opts.get("child"):
        child = subprocess.Popen(
            [sys.executable, "-c", "import signal, time\n"
             "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(120)"]
        )  # fmt: skip
        Path(opts["child"]).write_text(str(child.pid))
    phase("import")
    outcome = opts.get("outcomes", {}).get(cell["id"])
    if outcome:
        phase(outcome["phase"])
        print(outcome.get("stderr", ""), file=sys.stderr, flush=True)
        doc.update(status=outcome["status"], reason=outcome["reason"], finished=results.utc_now())
        results.write_json_atomic(args.out, doc, overwrite=True)
        return 0
    phase("data")
    doc["data"] = {"dataset": cell["dataset"], "train_samples": cell.get("train_samples")}
    results.write_json_atomic(args.out, doc, overwrite=True)
    if cell["id"] in opts.get("fail_cells", []):
        return 3
    repeats = cell["repeats"]
    for r in range(repeats):
        phase("fit", repeat=r + 1, of=repeats)
        if opts.get("fail_process") == process:
            deadline = time.monotonic() + 60
            while not Path(opts["fail_after"]).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            return 3
        time.sleep(opts.get("fit_seconds", 0.05) * cell["epochs"])
    sps = [1000.0 + 10 * r for r in range(repeats)]
    doc["train"] = {
        "samples_per_sec": stats.summarize(sps),
        "typical_samples_per_sec": stats.summarize(sps),
        "ms_per_step": stats.summarize([32000 / s for s in sps]),
    }
    doc.update(status="ok", reason=None, finished=results.utc_now())
    results.write_json_atomic(args.out, doc, overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
