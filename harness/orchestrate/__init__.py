"""Running cells: a worker process per cell, run manifests and resume, A/B runs, portability.

setup.py is the set-up every command that runs cells shares (load, resolve the backends,
plan, check the import references, the run folder, the environment, the manifest, the
Runner); runner.py runs a run's jobs in order, resuming what is unfinished, from jobs.py (the
plan: a job per cell and backend, the run's id), progress.py (the progress line),
processes.py (starting, watching and stopping the workers, signals, the events pipe) and
collect.py (a cell's result from what its workers left; a multi-process cell's merged);
manifest.py records what a run planned and checks a resume against it; refcheck.py checks the
import references before a run; shard.py picks a shard's cells; run.py is ``harness run``,
ab.py ``harness ab``, join.py ``harness worker-join``, calibrate.py ``harness calibrate`` and
portability.py ``harness portability`` (the checks themselves run in the worker package).
"""
