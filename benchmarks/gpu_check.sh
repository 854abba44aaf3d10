#!/usr/bin/env bash
# Every GPU check of issues #3, #10, #13 and #15 in one prepared run, for a session lent a GPU machine.
#
# The device machine has its own jax and torch (not our pins: the results record the versions
# they really ran) and no keras, which travels as wheels. Once, here, in the repo root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#     --platform manylinux_2_17_x86_64 -d .whl keras==3.15.1 namex optree h5py psutil nvidia-ml-py \
#     scipy scikit-learn joblib threadpoolctl pytest pluggy iniconfig packaging
# Then the device run, with carry [".whl"] and timeout_s about 540:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
#   export PYTHONPATH=/tmp/site:$PWD; bash benchmarks/gpu_check.sh
#
# Writes at most 8 files to $OUT (the device's limit): what `harness env` sees, the GPU scenario
# under jax and torch with its report (markdown and HTML, with GPU utilization over time), the
# instrumentation overhead on the GPU, the raw results, and issue10.txt: gpu:N within a
# runner's CUDA_VISIBLE_DEVICES, the UUID of the GPU each cell used against nvidia-smi's, JAX's
# memory with preallocation off and on, and the backend-free tests on a machine with a driver;
# then issue 13 (appended to issue10.txt, the file limit): the data-parallel scenario on the GPU
# (one GPU: dp2 must say it sees one), the same scenario and a two-process jax cell on the
# machine's CPU cores (simulated devices); then issue 15 (appended too): mlp against cnn and
# the user's own model and data (examples/own_model) on the GPU, under jax and torch; then
# issue 23 (appended too): a GPU that is there but unusable fails its cells, never skips them.
# The GPU scenario runs with --fail-on-skip (a healthy GPU skips nothing: exit 0).
set -u
OUT=${OUT:-/tmp/gpu-check}
RESULTS=/tmp/gpu-results
ROUNDS=${ROUNDS:-12}
mkdir -p "$OUT" "$RESULTS"
cd "$(dirname "$0")/.."

python3 -m harness env > "$OUT/env.txt" 2>&1
python3 -m harness env --json > "$RESULTS/env.json" 2>&1
for backend in jax torch; do
  timeout 180 python3 -m harness run scenarios/gpu.toml --backend "$backend" --out "$RESULTS" \
    --fail-on-skip > "$OUT/run-$backend.txt" 2>&1
  echo "exit $?" >> "$OUT/run-$backend.txt"
done
python3 -m harness compare "$RESULTS" --format md --out "$OUT/report.md" 2>> "$OUT/run-torch.txt"
python3 -m harness compare "$RESULTS" --format html --out "$OUT/report.html" 2>> "$OUT/run-torch.txt"
# The same fit with and without the harness's instrumentation, interleaved, on the GPU.
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} timeout 150 \
  python3 benchmarks/overhead.py --backend jax,torch --rounds "$ROUNDS" > "$OUT/overhead.txt" 2>&1
echo "exit $?" >> "$OUT/overhead.txt"
# Issue 10, on a share of one GPU as a CI runner gives it (CUDA_VISIBLE_DEVICES=0).
T=/tmp/issue10; mkdir -p "$T"
TINY=$'train_samples = 8192\ntest_samples = 512\nbatch_size = 256\nepochs = 2\nrepeats = 1\nwarmup_steps = 2\nsample_interval = 0.2'
printf '[defaults]\n%s\n[matrix]\ndevice = ["gpu:0", "gpu:1"]\n' "$TINY" > "$T/share.toml"
printf '[defaults]\n%s\ndevice = "gpu"\njax_preallocate = true\n' "$TINY" > "$T/prealloc.toml"
{
  nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader
  for backend in jax torch; do
    CUDA_VISIBLE_DEVICES=0 timeout 150 python3 -m harness run "$T/share.toml" "$T/prealloc.toml" \
      --backend "$backend" --out "$T/results" 2>&1 | tail -n 4
  done
  python3 - "$T/results" <<'PY'
import json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).rglob("*--*.json")):
    if "logs" in f.parts:
        continue
    d = json.loads(f.read_text())
    fit = ((d.get("monitor") or {}).get("phases") or {}).get("fit") or {}
    print(f.parent.name, d["cell"]["id"], d["backend"], d["status"], d.get("reason"),
          "gpu", (d.get("device") or {}).get("gpu"), "prealloc", d["cell"].get("jax_preallocate"),
          "fb_used_peak", (fit.get("gpu_fb_used") or {}).get("peak"),
          "proc_gpu_mem", fit.get("proc_gpu_mem"), (d.get("monitor") or {}).get("proc_gpu_mem_note"))
PY
  timeout 240 python3 -m pytest -q -p no:cacheprovider -m "not backend" tests/test_monitor.py tests/test_devices.py \
    tests/test_gate.py tests/test_calibrate.py tests/test_ab.py tests/test_runner_faults.py 2>&1 | tail -n 15
  KERAS_BACKEND=torch timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_backends.py \
    -k "smoke or pipelines" 2>&1 | tail -n 15
} > "$OUT/issue10.txt" 2>&1
{
  echo "== issue 13: data parallel"
  nvidia-smi -L
  for backend in jax torch; do
    timeout 150 python3 -m harness run scenarios/data-parallel.toml --backend "$backend" \
      --out "$T/dp-gpu" 2>&1 | tail -n 3
  done
  # the scenario on GPU: device = "gpu" for every cell, through a copy
  sed 's/^\[defaults\]$/[defaults]\ndevice = "gpu"/; s/^name = .*/name = "data-parallel-gpu"/' \
    scenarios/data-parallel.toml > "$T/dp-gpu.toml"
  for backend in jax torch; do
    timeout 150 python3 -m harness run "$T/dp-gpu.toml" --backend "$backend" --out "$T/dp-gpu" \
      2>&1 | tail -n 3
  done
  timeout 120 python3 -m harness run scenarios/multi-process.toml --backend jax --out "$T/dp-gpu" \
    2>&1 | tail -n 3
  python3 -m harness compare "$T/dp-gpu" 2>&1 | grep -B2 -A12 "^Scaling across devices"
} >> "$OUT/issue10.txt" 2>&1

{
  echo "== issue 15: mlp vs cnn, and the user's own model and data, on the GPU"
  sed 's/^\[defaults\]$/[defaults]\ndevice = "gpu"/; s/^name = .*/name = "mlp-vs-cnn-gpu"/' \
    scenarios/models.toml > "$T/models-gpu.toml"
  sed 's/^\[defaults\]$/[defaults]\ndevice = "gpu"/; s/^name = .*/name = "own-model-gpu"/;
       s|^python_path = .*|python_path = ["'"$PWD"'/examples/own_model"]|' \
    examples/own_model/own-model.toml > "$T/own-gpu.toml"
  for backend in jax torch; do
    timeout 150 python3 -m harness run "$T/models-gpu.toml" "$T/own-gpu.toml" \
      --backend "$backend" --out "$T/m-gpu" 2>&1 | tail -n 3
  done
  python3 -m harness compare "$T/m-gpu" 2>&1 | grep -A8 "^| cell | jax"
} >> "$OUT/issue10.txt" 2>&1

{
  echo "== issue 23: a GPU there but unusable fails (the backend's words), never skips"
  # The broken stack: CUDA_VISIBLE_DEVICES names GPU 99, which this machine lacks. NVML (which
  # ignores the variable) still counts the GPU, and /dev/nvidia0 is there; CUDA finds no
  # device, so jax's CUDA plugin and torch.cuda both fail to start.
  nvidia-smi -L
  printf '[defaults]\n%s\ndevice = "gpu"\n' "$TINY" > "$T/broken.toml"
  for backend in jax torch; do
    CUDA_VISIBLE_DEVICES=99 timeout 120 python3 -m harness run "$T/broken.toml" \
      --backend "$backend" --out "$T/broken" 2>&1 | tail -n 2
    echo "harness run broken.toml under $backend: exit ${PIPESTATUS[0]} (want 1)"
  done
  # The shipped GPU scenario on the broken stack, as CI runs it: it must not go green.
  CUDA_VISIBLE_DEVICES=99 timeout 150 python3 -m harness run scenarios/gpu.toml --backend jax \
    --fail-on-skip --out "$T/broken" 2>&1 | tail -n 4
  echo "harness run scenarios/gpu.toml --fail-on-skip (broken): exit ${PIPESTATUS[0]} (want 1)"
  python3 - "$T/broken" <<'PY'
import json, pathlib, sys
bad = 0
for f in sorted(pathlib.Path(sys.argv[1]).rglob("*--*.json")):
    if "logs" in f.parts:
        continue
    d = json.loads(f.read_text())
    ok = d["status"] == "failed" and d["phase"] == "device" and "cannot use it" in d["reason"]
    bad += not ok
    print("PASS" if ok else "FAIL", f.parent.name, d["cell"]["id"], d["backend"], d["status"],
          d["phase"], d["reason"])
print("issue 23:", "every broken-stack cell failed with its backend's words" if not bad
      else f"{bad} cell(s) did not fail as they should")
PY
} >> "$OUT/issue10.txt" 2>&1

tar czf "$OUT/results.tgz" --exclude=models -C "$(dirname "$RESULTS")" "$(basename "$RESULTS")"
ls -l "$OUT"
