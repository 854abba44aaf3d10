"""The comparison report in markdown: one table over every cell and backend, then notes."""

from __future__ import annotations

from .rows import rows


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.0%}"


def _util(cpu: float | None, gpu: float | None) -> str:
    cpu_s = "-" if cpu is None else f"{cpu:.0f}%"
    gpu_s = "-" if gpu is None else f"{gpu:.0f}%"
    return f"{cpu_s} / {gpu_s}"


def _fmt_int(x: float | None) -> str:
    return "" if x is None else f"{x:,.0f}"


def render_markdown(docs: list[dict], problems: list[str] | None = None) -> str:
    """Markdown: one table over every cell and backend, then notes and environments."""
    table = rows(docs)
    long_reasons: list[str] = []
    lines = ["# Keras backend comparison", ""]
    if not table:
        lines.append("No results found.")
    else:
        lines += [
            "| scenario | cell | backend | status | data | train samples/s (median ± MAD) | "
            "vs fastest | ms/step | warm-up s | test acc | reload | matmul peak | CPU / GPU peak |",
            "|---|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for r in table:
            data = f"{r['dataset']}/{r['pipeline']}"
            version = (
                f"{r['backend']} {r['backend_version']}" if r["backend_version"] else r["backend"]
            )
            if r["status"] == "ok":
                spread = f"{_fmt_int(r['samples_per_sec'])} ± {_fmt_int(r['samples_per_sec_mad'])}"
                if r["noisy"]:
                    spread += f" (noisy, cv {r['samples_per_sec_cv']:.0%})"
                warm = "" if r["warmup_seconds"] is None else f"{r['warmup_seconds']:.2f}"
                reload = {True: "ok", False: "MISMATCH", None: "-"}[r["reload_ok"]]
                acc = "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.3f}"
                lines.append(
                    f"| {r['scenario']} | {r['cell']} | {version} | ok | {data} (n={r['train_samples']}) "
                    f"| {spread} | {r['relative']:.2f}x | {r['ms_per_step']:.3f} | {warm} "
                    f"| {acc} | {reload} | {_pct(r['efficiency'])} "
                    f"| {_util(r['peak_cpu'], r['peak_gpu'])} |"
                )
            else:
                reason = (r["reason"] or "").replace("|", "/")
                if len(reason) > 90:
                    long_reasons.append(
                        f"- {r['scenario']}/{r['cell']} under {r['backend']}: {reason}"
                    )
                    reason = reason[:87].rstrip() + "..."
                lines.append(
                    f"| {r['scenario']} | {r['cell']} | {version} | {r['status']} | {data} "
                    f"| {reason} | | | | | | | |"
                )
    if long_reasons:
        lines += ["", "## Why cells did not run", ""] + long_reasons
    lines += ["", _environment_notes(docs)]
    if problems:
        lines += ["", "## Unreadable result files", ""] + [f"- {p}" for p in problems]
    return "\n".join(lines).rstrip() + "\n"


def _environment_notes(docs: list[dict]) -> str:
    seen: dict[tuple, list[str]] = {}
    for d in docs:
        env = d.get("environment") or {}
        ident = (
            env.get("hostname"),
            env.get("cpu_model"),
            env.get("keras"),
            d["backend"],
            ", ".join(f"{k} {v}" for k, v in sorted((env.get("backend_versions") or {}).items())),
        )
        seen.setdefault(ident, []).append(d.get("run_id") or "?")
    lines = ["## Environments", ""]
    for (host, cpu, keras, backend, versions), runs in sorted(seen.items(), key=str):
        lines.append(
            f"- {backend}: {versions or '?'} with keras {keras} on {host} ({cpu}); runs: "
            + ", ".join(sorted(set(runs)))
        )
    lines.append("")
    lines.append(
        "Throughput is steady-state training (warm-up fitted and timed apart), median over "
        "repeats with its median absolute deviation; 'noisy' marks a coefficient of variation "
        "above 10%. 'matmul peak': achieved training FLOP/s as a share of what the backend's own "
        "matmul reaches at the model's shape on the same device. CPU / GPU peak: system CPU "
        "and GPU SM utilization during the measured fits."
    )
    return "\n".join(lines)
