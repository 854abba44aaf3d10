"""The worker side: the only code that imports keras or a backend, and only in a worker process.

cell.py runs one cell (its phases, its result file); model.py builds and compiles the model;
data.py loads datasets and feeds them through each input pipeline; timing.py times the
fits; probe.py measures the backend's matmul peak; devices.py asks the backend where things
live; portability.py loads a model saved under another backend. Nothing outside this package
imports keras, tensorflow, jax or torch (a test walks the package to check).
"""
