"""The commands: one thin module per ``harness`` command, each declaring its own arguments
(``add_arguments``, the shared ones named in ``PARENTS`` from common_args.py) and a
``main(args)`` that calls the plain keyword function doing the work. Nothing below this
package sees an argparse Namespace.

Modules: run, worker_join, compare, check, history, ab, calibrate, baseline, portability,
validate, schema, env, monitor; common_args (the shared options).
"""

from __future__ import annotations

# In `harness --help` order: the command's name, and its module here.
COMMANDS = (
    ("run", "run"),
    ("worker-join", "worker_join"),
    ("compare", "compare"),
    ("check", "check"),
    ("history", "history"),
    ("ab", "ab"),
    ("calibrate", "calibrate"),
    ("baseline", "baseline"),
    ("portability", "portability"),
    ("validate", "validate"),
    ("schema", "schema"),
    ("env", "env"),
    ("monitor", "monitor"),
)
