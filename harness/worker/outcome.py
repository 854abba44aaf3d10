"""How a cell ends early with a status other than failed: the exception every phase may raise."""

from __future__ import annotations

from ..results import Status


class CellOutcome(Exception):
    """Ends a cell early with a status other than "failed" (skipped / unsupported)."""

    def __init__(self, status: Status, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason
