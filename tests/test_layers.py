"""The package's layers, read from its import statements: the gate judges and the reports
draw, neither runs cells (no orchestrate module), the worker side imports no orchestrator
code, and no two modules import each other at load time."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "harness"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    """The harness modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = _module(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("harness")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if not name.startswith("harness"):
                continue
            for alias in node.names:  # `from . import verdicts` names a module
                child = f"{name}.{alias.name}"
                known = (ROOT.parent / Path(*child.split("."))).with_suffix(".py").exists()
                out.add(child if known else name)
    return out


MODULES = {_module(p): p for p in sorted(ROOT.rglob("*.py"))}


def test_the_gate_and_the_reports_run_no_cells():
    for name, path in MODULES.items():
        if name.startswith(("harness.gate", "harness.report")):
            bad = sorted(m for m in _imports(path) if m.startswith("harness.orchestrate"))
            assert not bad, f"{name} imports {bad}: the gate judges, the reports draw"


def test_the_worker_imports_no_orchestrator_code():
    for name, path in MODULES.items():
        if name.startswith("harness.worker"):
            bad = sorted(
                m for m in _imports(path) if m.startswith(("harness.orchestrate", "harness.report"))
            )
            assert not bad, f"{name} imports {bad}"


# Top down: the commands parse arguments; orchestration runs cells, the gate judges, the
# reports draw; below them what every layer reads (scenarios, result files, the environment,
# the worker's task, the sampler); lowest, helpers that import no other harness module. The
# worker side stands apart: it reads the two lower layers (and the gate's pure statistics).
LAYERS = (
    (4, ("harness.cli", "harness.commands", "harness.__main__")),
    (3, ("harness.orchestrate", "harness.gate", "harness.report", "harness.dmon")),
    (2, ("harness.scenario", "harness.results", "harness.environment", "harness.workload",
         "harness.protocol", "harness.monitor")),
)  # fmt: skip
WORKER_MAY_READ = ("harness.gate.stats",)


def _layer(name: str) -> int:
    if name.startswith("harness.worker"):
        return 0
    return next((n for n, prefixes in LAYERS if name.startswith(prefixes)), 1)


def test_each_layer_imports_only_the_layers_below_it():
    for name, path in MODULES.items():
        mine = _layer(name)
        for dep in _imports(path):
            theirs = _layer(dep) if dep in MODULES else None
            if theirs is None:
                continue
            if mine == 0:  # the worker side
                assert theirs in (0, 1, 2) or dep in WORKER_MAY_READ, f"{name} imports {dep}"
            else:
                assert theirs != 0, f"{name} imports the worker's {dep}"
                assert theirs <= mine, f"{name} (layer {mine}) imports {dep} (layer {theirs})"


def test_no_import_cycles_at_load_time():
    graph = {
        n: {m for m in _imports(p, True) if m in MODULES and m != n} for n, p in MODULES.items()
    }
    seen: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for name in sorted(graph):
        if name not in seen:
            visit(name, [name])


def test_the_rules_can_fail():
    """The reader finds what the rules look for (a rule over nothing would always pass)."""
    found = _imports(ROOT / "orchestrate" / "ab.py")
    assert {"harness.gate.check", "harness.orchestrate.setup", "harness.results"} <= found
    assert "harness.gate.stats" in _imports(ROOT / "worker" / "train.py")
    assert _layer("harness.commands.run") > _layer("harness.gate.check") > _layer("harness.results")
    assert _layer("harness.results") > _layer("harness.errors") > _layer("harness.worker.cell")


def _stdlib_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_only_the_commands_parse_arguments():
    """Below harness/commands/ (and cli.py, which builds the parser from them) no module sees
    an argparse Namespace: the work is plain keyword functions. The worker's process has a
    command line of its own (python -m harness.worker TASK RESULT), apart from the CLI."""
    allowed = ("harness.cli", "harness.commands", "harness.worker.cell")
    for name, path in MODULES.items():
        if not name.startswith(allowed):
            assert "argparse" not in _stdlib_imports(path), f"{name} imports argparse"
    assert "argparse" in _stdlib_imports(ROOT / "commands" / "run.py")  # the reader reads


def test_every_command_is_a_module_of_its_own():
    from harness.commands import COMMANDS

    modules = {p.stem for p in (ROOT / "commands").glob("*.py")} - {"__init__", "common_args"}
    assert sorted(m for _, m in COMMANDS) == sorted(modules)


def test_every_package_names_its_modules():
    """A newcomer reads a package's docstring first: it names every module in the package."""
    import importlib
    import re

    for init in sorted(ROOT.rglob("__init__.py")):
        package = _module(init)
        doc = importlib.import_module(package).__doc__ or ""
        stems = [
            p.stem
            for p in init.parent.iterdir()
            if p.suffix == ".py" or (p / "__init__.py").exists()
        ]
        missing = [
            s for s in sorted(stems)
            if not s.startswith("__") and not re.search(rf"\b{s}\b", doc)
        ]  # fmt: skip
        assert not missing, f"{package}'s docstring does not name {missing}"


LONG = 400  # lines: a module longer holds one concern and its docstring says why


def test_a_long_module_says_why():
    import importlib

    for name, path in MODULES.items():
        if len(path.read_text().splitlines()) > LONG:
            doc = importlib.import_module(name).__doc__ or ""
            assert f"Longer than {LONG} lines, and one concern:" in doc, f"{name} is long"
