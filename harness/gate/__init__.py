"""The regression gate: statistics, verdicts, baselines and calibration.

stats.py holds the pure statistics; verdicts.py decides which results meet and judges them;
check.py is ``harness check`` (the table and the exit code); baseline.py stores baselines;
calibrate.py measures the noise floor of a runner.
"""
