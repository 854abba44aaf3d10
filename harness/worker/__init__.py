"""The worker side: the only code that imports keras or a backend, and only in a worker process.

cell.py runs one cell (its life, its phases in order, its result file); train.py is the train
phase (calibration for min_time, the measured repeats, the train result); evaluate.py the
phases after it (evaluate, predict, the efficiency probe, save and reload); outcome.py the
early end of a cell (skipped / unsupported). model.py builds and compiles the model; data.py
loads datasets and feeds them through each input pipeline; userdata.py takes the user's own
dataset; imports.py resolves "package.module:function" references (refcheck.py: their quick
check before a run); timing.py times the fits; probe.py measures the backend's matmul peak;
devices.py asks the backend what it sees, where variables live and what settings it runs;
parallel.py sets up data parallelism on Keras' engines; portability.py loads a model saved
under another backend. backends/ holds one module per backend (tensorflow.py, jax.py,
torch.py), of the same shape, chosen once by name: the only backend-specific code. Nothing
outside this package imports keras, tensorflow, jax or torch (a test walks the package to
check).
"""
