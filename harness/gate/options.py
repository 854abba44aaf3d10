"""The gate's settings: the slowdown it allows, the confidence it holds, how it holds the error
rate over its cells (the correction) and what it ranks (the metric); parsing and checking them.
"""

from __future__ import annotations

import re

from ..errors import UserError
from ..results import THROUGHPUT, TYPICAL


class LimitError(UserError):
    """A --max-slowdown or --confidence value that cannot be parsed or is out of range."""


# How the error rate is held over the judged cells (--correction): Holm-Bonferroni keeps the
# chance of any false alarm in the whole gate at most 1 - confidence (the default); bh
# (Benjamini-Hochberg) the expected share of false alarms among the alarms; none tests each
# cell at 1 - confidence alone (a 20-cell gate then raises a false alarm most of the time).
CORRECTIONS = {
    "holm": "Holm-Bonferroni: at most {alpha} chance of any false alarm over the {m} judged cells",
    "bh": "Benjamini-Hochberg: at most {alpha} expected share of false alarms among the alarms "
    "over the {m} judged cells",
    "none": "none: each of the {m} judged cells tested at {alpha} alone",
}
# Confidence accepted: below 0.5 the rank test would call chance a regression; at 1 or above
# no p-value is small enough, so the gate could never fail.
CONFIDENCE_RANGE = "from 0.5 (50%) to below 1 (100%)"


# What the gate ranks (``--metric``): a field of a result's ``train`` with per-repeat values.
METRICS = {
    # samples over each repeat's measured epochs / their wall time: what a user gets
    "throughput": THROUGHPUT,
    # batch size / the median 10-step chunk's time per step: blind to bursts of other work on
    # a shared machine (they slow some chunks), and to slowdowns that hit only some steps
    "typical": TYPICAL,
}

# "5%", "0.05", " 95 %": a number, and a percent sign or none.
_NUMBER = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*")


def parse_limit(text: str) -> float:
    """``"5%"`` or ``"0.05"`` -> 0.05."""
    m = _NUMBER.fullmatch(text)
    if not m:
        raise LimitError(
            f"--max-slowdown: expected a percentage like 5% or a fraction like 0.05, got {text!r}"
        )
    value = float(m.group(1)) / (100 if m.group(2) else 1)
    if not 0 < value < 1:
        raise LimitError(f"--max-slowdown: must be between 0% and 100%, got {text!r}")
    return value


def parse_confidence(text: str) -> float:
    """``"0.95"`` or ``"95%"`` -> 0.95; anything outside [0.5, 1) is refused.

    Args:
        text: the value given to ``--confidence``.

    Raises:
        LimitError: one line naming ``--confidence``, the value and the accepted range.
    """
    m = _NUMBER.fullmatch(text)
    if not m:
        raise LimitError(
            f"--confidence: expected a fraction like 0.95 or a percentage like 95%, got {text!r}"
        )
    number = float(m.group(1))
    value = number / (100 if m.group(2) else 1)
    if not 0.5 <= value < 1:
        # "95" is the likeliest slip: a percentage without its sign
        hint = f" (did you mean {text.strip()}%?)" if not m.group(2) and 50 <= number < 100 else ""
        raise LimitError(f"--confidence: must be {CONFIDENCE_RANGE}, got {text!r}{hint}")
    return value


def check_confidence(confidence: float) -> None:
    """Refuses a confidence the gate cannot work with (callers that bypass the CLI)."""
    if not 0.5 <= confidence < 1:  # NaN fails this too
        raise ValueError(f"confidence must be {CONFIDENCE_RANGE}, got {confidence!r}")


def alpha(confidence: float) -> float:
    """The rank test's significance level; rounded, as 1 - 0.95 is 0.05000000000000004."""
    return round(1 - confidence, 12)


def percent(fraction: float) -> str:
    """0.95 -> "95%", 0.995 -> "99.5%" (no float noise such as 56.99999999999999%)."""
    return f"{round(fraction * 100, 6):g}%"
