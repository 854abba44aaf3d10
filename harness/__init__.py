"""A multi-backend Keras 3 benchmark harness (see README.md; the layout in docs/development.md).

Layers, top down (tests/test_layers.py holds the direction):

- ``cli.py`` (``__main__.py``) and ``commands/``: the command line, one thin module per command.
- ``orchestrate/`` runs cells in worker processes; ``gate/`` judges result files; ``report/``
  draws every page; ``dmon.py`` is ``harness monitor``.
- What they all read: ``scenario/`` (scenario files and their keys), ``results.py`` (result
  files: write, find, read), ``result_view.py`` (what a result says: statuses, rates, a
  read-only view), ``result_shape.py`` (the shape a result file must have before anything
  reads it), ``workload.py`` (what a cell computes), ``environment.py`` (the machine and
  versions), ``protocol.py`` (the task a worker is given), ``monitor.py`` (the CPU/GPU sampler
  and NVML).
- The lowest helpers: ``backends.py`` (the backend list), ``devices.py`` (device strings and
  CUDA_VISIBLE_DEVICES), ``errors.py`` (one-line user errors), ``lifeline.py`` (a child dies
  with its parent).
- ``worker/`` stands apart: the only code that imports keras or a backend, in a worker process.
"""

__version__ = "0.1.0"
