"""The sections every report format shows: the environments, and the portability matrix."""

from __future__ import annotations

from ..backends import NAMES
from ..worker.portability import REFERENCE_SAMPLES, TOLERANCE


def portability_markdown(checks: list[dict]) -> str:
    """Rows: saved under; columns: loaded under; each entry over every model checked."""
    if not checks:
        return ""
    backends = NAMES
    lines = [
        "## Portability (.keras saved under the row's backend, loaded under the column's)",
        "",
        "| saved under | " + " | ".join(f"loaded under {b}" for b in backends) + " |",
        "|---|" + "---|" * len(backends),
    ]
    for src in backends:
        cells = []
        for dst in backends:
            if src == dst:
                cells.append("(same backend: see reload)")
                continue
            sub = [c for c in checks if c["source_backend"] == src and c["target_backend"] == dst]
            if not sub:
                cells.append("not checked")
                continue
            ok = [c for c in sub if c["status"] == "ok"]
            worst = max((c["max_abs_diff"] for c in ok), default=None)
            text = f"{len(ok)}/{len(sub)} agree"
            if worst is not None:
                text += f" (max diff {worst:.1e})"
            if len(ok) < len(sub):
                bad = next(c for c in sub if c["status"] != "ok")
                text += f"; {bad['scenario']}/{bad['cell']}: {bad.get('reason')}"
            cells.append(text.replace("|", "/"))
        lines.append(f"| {src} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Agree: predictions on {REFERENCE_SAMPLES} test samples within {TOLERANCE:g} of the saving backend's.",
    ]
    return "\n".join(lines)
