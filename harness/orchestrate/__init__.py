"""Running cells: a worker process per cell, run manifests and resume, A/B runs, portability.

runner.py starts, watches and stops the workers; manifest.py records what a run planned and
checks a resume against it; run.py is ``harness run``; ab.py is ``harness ab``; portability.py
is ``harness portability`` (the checks themselves run in the worker package).
"""
