"""The tables every report format shows, each defined once: the per-cell details, the environments
and the portability matrix, with the text that goes with them. markdown.py and html.py only
render them (table.py), so the two formats cannot say different things.
"""

from __future__ import annotations

import html
from typing import Any

from ..backends import NAMES, rank
from ..results import MAX_SHARDS, NOT_CHECKED, REFERENCE_SAMPLES, TOLERANCE, Result, Status
from .rows import hardware, rows
from .table import HTML, RIGHT, Cell, Column, Row, Table, row

DETAILS_NOTE = (
    "Throughput is steady-state training (warm-up fitted and timed apart), median over "
    "repeats with its median absolute deviation; 'noisy' marks a coefficient of variation "
    "above 10%. 'matmul peak': achieved training FLOP/s as a share of what the backend's own "
    "matmul reaches at the shape of the tutorial model's first layer (batch x 784 x 128, "
    "for every model; '(partial)': some layers' FLOPs not counted) on the same device. "
    "CPU / GPU peak: system CPU and GPU SM utilization during the measured fits."
)

DETAILS_COLUMNS = (
    Column("cell"),
    Column("backend"),
    Column("status"),
    Column("data"),
    Column("train samples/s (median ± MAD)", RIGHT),
    Column("vs fastest", RIGHT),
    Column("ms/step", RIGHT),
    # Percentiles of timed chunks of steps: the markdown table is already as wide as it can be read.
    Column("step time (chunks)", formats=(HTML,)),
    Column("warm-up s", RIGHT),
    Column("test acc", RIGHT),
    Column("reload"),
    Column("matmul peak", RIGHT),
    Column("CPU / GPU peak", RIGHT),
)


def by_scenario(docs: list[dict]) -> dict[str, list[dict]]:
    """The results of each scenario, scenarios in the order their results come."""
    out: dict[str, list[dict]] = {}
    for d in docs:
        out.setdefault(Result(d).scenario, []).append(d)
    return out


def description(docs: list[dict]) -> str:
    """What the scenario file says it measures (its first result's)."""
    return Result(docs[0]).description if docs else ""


COMPARISON_NOTE = (
    "Train samples/s, median ± MAD over repeats; the fastest backend of each cell in bold; "
    "'noisy': the repeats spread by more than 10%."
)


def comparison(docs: list[dict]) -> Table:
    """One scenario at a glance: a row per cell, a column per backend (median samples/s with
    its spread, the fastest of the row in bold); a cell that did not run says so."""
    table = rows(docs)
    names = [b for b in NAMES if any(r["backend"] == b for r in table)]
    by_cell: dict[str, dict[str, dict[str, Any]]] = {}
    for r in table:  # with --all, a backend's newest result of the cell is the one shown
        by_cell.setdefault(r["cell"], {})[r["backend"]] = r
    return Table(
        (Column("cell"), *(Column(b, RIGHT) for b in names)),
        tuple(
            row(cell, *_speeds([found.get(b) for b in names])) for cell, found in by_cell.items()
        ),
    )


def _speeds(shown: list[dict[str, Any] | None]) -> list[Cell]:
    """The throughput of each backend in one cell; the fastest shown in bold."""
    ok = [r["samples_per_sec"] for r in shown if r and r["status"] == Status.OK]
    best = max(ok, default=None)
    cells = []
    for r in shown:
        if r is None:
            cells.append(Cell("-", css="muted"))
        elif r["status"] != Status.OK:
            cells.append(Cell(r["status"], css="muted"))
        else:
            text = f"{r['samples_per_sec']:,.0f} ± {r['samples_per_sec_mad']:,.0f}"
            if r["noisy"]:
                text += " (noisy)"
            cells.append(Cell(text, strong=r["samples_per_sec"] == best))
    return cells


SETTINGS_TITLE = "What each backend ran"
SETTINGS_COLUMNS = tuple(
    Column(c)
    for c in ("backend", "compiled", "float32 matmul", "dtype policy", "CPU threads", "cells")
)
# What jit_compile = true means under each backend (Keras: XLA, or torch.compile under torch).
COMPILERS = {"torch": "torch.compile"}


def settings(docs: list[dict]) -> Table | None:
    """Per backend, what it really ran (recorded by the worker after compiling): compiled or
    not, the float32 matmul precision (TF32 exists on GPUs only), the dtype policy, its CPU
    thread pools (intra-op / inter-op; and tf.data's, where it fed the cell), and the cells
    that ran so. None where no result recorded them (older results)."""
    found: dict[tuple[str, ...], list[str]] = {}
    for r in map(Result, docs):
        s = r.backend_settings
        if not r.ok or not s:
            continue
        if "error" in s:
            key: tuple[str, ...] = (r.backend, f"not recorded: {s['error']}")
        else:
            on_cpu = r.variables_on == "cpu"
            key = (
                r.backend,
                _compiled(r.backend, s.get("jit_compile")),
                "float32 (CPU)" if on_cpu else str(s.get("matmul_precision") or "-"),
                str(s.get("dtype_policy") or "-"),
                f"{_threads(s.get('intra_op_threads'))} / {_threads(s.get('inter_op_threads'))}"
                + (f"; tf.data {s['tf_data_threads'] or 'auto'}" if "tf_data_threads" in s else ""),
            )
        found.setdefault(key, []).append(r.cell["id"])
    if not found:
        return None
    ordered = sorted(found, key=lambda k: (rank(k[0]), k))
    return Table(
        SETTINGS_COLUMNS,
        tuple(
            row(*k, ", ".join(found[k]))
            if len(k) > 2
            else row(k[0], Cell(f"{k[1]} ({', '.join(found[k])})", span=True))
            for k in ordered
        ),
    )


def _compiled(backend: str, jit_compile: bool | None) -> str:
    """What jit_compile resolved to: the backend's compiler, no, or - where not recorded."""
    if jit_compile is None:
        return "-"
    return COMPILERS.get(backend, "XLA") if jit_compile else "no"


def _threads(n: int | None) -> str:
    """0: the backend sizes the pool itself; None: it does not say (jax)."""
    return {0: "auto", None: "not exposed"}.get(n, str(n))


def details(docs: list[dict]) -> Table:
    """One row per result: its measurements, or why it did not run (spanning the measurements)."""
    return Table(
        DETAILS_COLUMNS,
        tuple(_detail_row(d, r) for d, r in zip(docs, rows(docs), strict=True)),
    )


def _detail_row(doc: dict, r: dict[str, Any]) -> Row:
    backend = f"{r['backend']} {r['backend_version']}" if r["backend_version"] else r["backend"]
    data = f"{r['dataset']}/{r['pipeline']}"
    if r["status"] != Status.OK:
        reason = Cell(r["reason"] or "", span=True)
        return row(r["cell"], backend, r["status"], data, reason, off=True)
    return row(
        r["cell"], backend, Status.OK, f"{data} (n={r['train_samples']})",
        _throughput(r), f"{r['relative']:.2f}x", _number(r["ms_per_step"], "{:.3f}"), step_time(doc),
        _number(r["warmup_seconds"], "{:.2f}", ""), _number(r["test_accuracy"], "{:.3f}"),
        _reload(r["reload_ok"]),
        _number(r["efficiency"], "{:.0%}", "") + (" (partial)" if r["efficiency_partial"] else ""),
        f"{_number(r['peak_cpu'], '{:.0f}%')} / {_number(r['peak_gpu'], '{:.0f}%')}",
    )  # fmt: skip


def _number(x: float | None, fmt: str, missing: str = "-") -> str:
    return missing if x is None else fmt.format(x)


def _throughput(r: dict[str, Any]) -> Cell:
    """Median ± MAD; a noisy one says so, and the page shows the warning in its warning colour."""
    spread = f"{r['samples_per_sec']:,.0f} ± {r['samples_per_sec_mad']:,.0f}"
    if not r["noisy"]:
        return Cell(spread)
    noisy = f"(noisy, cv {r['samples_per_sec_cv']:.0%})"
    markup = f'{html.escape(spread)} <span class="warn">{html.escape(noisy)}</span>'
    return Cell(f"{spread} {noisy}", markup=markup)


def _reload(ok: bool | None) -> Cell:
    """None: the run skipped save/reload (``harness ab`` trains only)."""
    if ok is None:
        return Cell("-")
    return Cell("ok") if ok else Cell("MISMATCH", markup="<b>MISMATCH</b>")


def step_time(doc: dict) -> str:
    """Step-time percentiles over timed chunks of steps; empty where the worker recorded none."""
    st = Result(doc).train.get("step_time_ms")
    if not st:
        return ""
    return f"p50 {st['p50']:.3f} / p90 {st['p90']:.3f} / p99 {st['p99']:.3f} ms"


SCALING_TITLE = "Scaling across devices"
SCALING_NOTE = (
    "Scaling efficiency: samples/s on N devices / (N x samples/s of the same cell on one "
    "device), 100% being perfect; batch_size is the global batch, split across the devices. "
    "Devices simulated on one CPU share its cores: there the figure shows what the engine "
    "costs, not a speed-up."
)
SCALING_COLUMNS = (
    Column("cell"),
    Column("backend"),
    Column("devices"),
    Column("engine"),
    Column("train samples/s", RIGHT),
    Column("1 device", RIGHT),
    Column("scaling efficiency", RIGHT),
)


def scaling(docs: list[dict]) -> Table | None:
    """Per data-parallel cell (more than one device), its throughput against the same cell on
    one device; a cell that did not run says why. None where a scenario has no such cell."""
    found = [r for r in rows(docs) if r["data_parallel"] > 1]
    if not found:
        return None
    out = []
    for r in sorted(found, key=lambda r: (rank(r["backend"]), r["cell"])):
        procs = r["processes"]
        where = f"{r['data_parallel']}" + (f" in {procs} processes" if procs > 1 else "")
        head = (r["cell"], r["backend"], where)
        if r["status"] != Status.OK:
            out.append(row(*head, Cell(f"{r['status']}: {r['reason']}", span=True), off=True))
            continue
        one = r.get("single_device_samples_per_sec")
        eff = r.get("scaling_efficiency")
        out.append(
            row(
                *head,
                r["engine"] or "-",
                f"{r['samples_per_sec']:,.0f}",
                _number(one, "{:,.0f}", "no 1-device cell here"),
                Cell(_number(eff, "{:.0%}"), strong=eff is not None and eff >= 0.9),
            )
        )
    return Table(SCALING_COLUMNS, tuple(out))


SHARDS_TITLE = "Shards"


def shards(docs: list[dict]) -> list[str]:
    """What the results of `harness run --shard K/N` runners say together: the hardware of
    each shard, a warning where they differ (their cells are then not one comparison), and
    any shard of the plan with no result here."""
    found: dict[str, set[str]] = {}
    for r in map(Result, docs):
        if r.shard:
            found.setdefault(str(r.shard), set()).add(hardware(r.doc))
    if not found:
        return []
    kinds = set().union(*found.values())
    listing = "; ".join(f"{k} on {' + '.join(sorted(v))}" for k, v in sorted(found.items()))
    if len(kinds) > 1:
        lines = [
            f"Warning: the shards ran on different hardware ({listing}): cells of different "
            "shards are not one comparison."
        ]
    else:
        lines = [f"Shards {', '.join(sorted(found))}, all on the same hardware ({kinds.pop()})."]
    totals = {k.partition("/")[2] for k in found}
    for total in sorted(t for t in totals if t.isdigit() and int(t) <= MAX_SHARDS):
        missing = [f"{i}/{total}" for i in range(1, int(total) + 1) if f"{i}/{total}" not in found]
        if missing:
            lines.append(
                f"No results here from shard(s) {', '.join(missing)} of {total} (not run yet, "
                "not given to this report, or holding no cell)."
            )
    return lines


NO_GPU = "none"
ENVIRONMENT_COLUMNS = tuple(
    Column(h) for h in ("backend", "versions", "keras", "host", "CPU", "GPU", "runs")
)


def environments(docs: list[dict]) -> Table:
    """One row per distinct software and machine the results were measured on, with its runs:
    numbers measured on two machines, or two versions, are not one comparison."""
    runs: dict[tuple[str, ...], set[str]] = {}
    for d in docs:
        runs.setdefault(_environment(d), set()).add(Result(d).run_id or "?")
    return Table(
        ENVIRONMENT_COLUMNS,
        tuple(
            row(*key, ", ".join(sorted(ids)))
            for key, ids in sorted(runs.items(), key=lambda kv: _machine_first(kv[0]))
        ),
    )


def _machine_first(key: tuple[str, ...]) -> tuple[str, ...]:
    """Environments by host, CPU, keras, backend, versions, GPU: as the markdown report has
    always listed them, a machine's lines together."""
    backend, versions, keras, host, cpu, gpus = key
    return host, cpu, keras, backend, versions, gpus


def _environment(doc: dict) -> tuple[str, ...]:
    """backend, its versions, keras, host, CPU, GPU names: what sets an environment apart."""
    env = Result(doc).environment
    versions = ", ".join(f"{k} {v}" for k, v in sorted((env.get("backend_versions") or {}).items()))
    gpus = ", ".join(g.get("name", "?") for g in (env.get("gpu") or {}).get("gpus", []))
    return (
        Result(doc).backend, versions or "?", str(env.get("keras")), str(env.get("hostname")),
        str(env.get("cpu_model")), gpus or NO_GPU,
    )  # fmt: skip


PORTABILITY_TITLE = "Portability"
PORTABILITY_CAPTION = ".keras saved under the row's backend, loaded under the column's"
PORTABILITY_NOTE = (
    f"Agree: predictions on {REFERENCE_SAMPLES} test samples within {TOLERANCE:g} "
    "of the saving backend's."
)


def portability(checks: list[dict]) -> Table:
    """Rows: saved under; columns: loaded under; each entry over every model checked."""
    columns = (Column("saved under"), *(Column(f"loaded under {b}") for b in NAMES))
    return Table(
        columns,
        tuple(row(src, *(_agreement(checks, src, dst) for dst in NAMES)) for src in NAMES),
    )


def _agreement(checks: list[dict], src: str, dst: str) -> Cell:
    """How many models saved under ``src`` agree loaded under ``dst``; the first that does not,
    and why, so that a reader need not open the check files to see what broke."""
    if src == dst:
        return Cell("(same backend: see reload)", css="muted")
    sub = [c for c in checks if c["source_backend"] == src and c["target_backend"] == dst]
    if not sub:
        return Cell("not checked", css="muted")
    # not loaded (needs --trust-code, or a file refused): said apart, never counted as agreeing
    unchecked = [c for c in sub if c["status"] == NOT_CHECKED]
    sub = [c for c in sub if c["status"] != NOT_CHECKED]
    why = f"{NOT_CHECKED}: {unchecked[0].get('reason')}" if unchecked else ""
    if not sub:
        return Cell(why, css="muted")
    tail = f"; {len(unchecked)} {why}" if unchecked else ""
    ok = [c for c in sub if c["status"] == "ok"]
    worst = max((c["max_abs_diff"] for c in ok), default=None)
    text = f"{len(ok)}/{len(sub)} agree"
    if worst is not None:
        text += f" (max diff {worst:.1e})"
    if len(ok) == len(sub):
        return Cell(text + tail)
    retried = [c.get("compile_false") for c in sub if c.get("compile_false")]
    if retried:
        bare = sum(r.get("status") == "ok" for r in retried)
        text += f"; {bare}/{len(retried)} that did not load agree with compile=False (no optimizer)"
    bad = next(c for c in sub if c["status"] != "ok")
    # the first sentence: Keras' own reasons go on with the whole saved config (the check
    # file keeps all of it)
    reason = str(bad.get("reason")).split(". ", 1)[0]
    return Cell(f"{text}; {bad['scenario']}/{bad['cell']}: {reason}{tail}", css="warn")
