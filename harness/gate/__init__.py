"""The regression gate: it judges result files, and runs no cell (orchestrate/ runs them).

stats.py holds the pure statistics; options.py the gate's settings (the slowdown allowed, the
confidence, the correction, the metric) and their parsing; judge.py the rules: one cell's
verdict, and the cells of one gate judged together under the correction; verdicts.py decides
which results meet (units, A/B sides, machines, workloads) and gives every cell a verdict
(``check``); check.py is ``harness check`` (the table, the notes and the exit code); ci.py
writes JUnit XML and GitHub's job summary; history.py finds the series of stored runs across
commits and their breaks, step_detect.py where a series moved for good (report/history.py
draws them); baseline.py stores baselines; calibrate.py judges the A/A gates of a runner's
noise floor (orchestrate/calibrate.py runs them).
"""
