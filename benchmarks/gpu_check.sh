#!/usr/bin/env bash
# Every GPU check of issue #3 in one prepared run, for a session that is lent a GPU machine.
#
# The device machine has its own jax and torch (not our pins: the results record the versions
# they really ran) and no keras, which travels as wheels. Once, here, in the repo root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#     --platform manylinux_2_17_x86_64 -d .whl keras==3.15.1 namex optree h5py psutil nvidia-ml-py
# Then the device run, with carry [".whl"] and timeout_s about 540:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
#   export PYTHONPATH=/tmp/site:$PWD; bash benchmarks/gpu_check.sh
#
# Writes at most 8 files to $OUT (the device's limit): what `harness env` sees, the GPU scenario
# under jax and torch with its report (markdown and HTML, with GPU utilization over time), the
# instrumentation overhead on the GPU, and the raw results.
set -u
OUT=${OUT:-/tmp/gpu-check}
RESULTS=/tmp/gpu-results
ROUNDS=${ROUNDS:-12}
mkdir -p "$OUT" "$RESULTS"
cd "$(dirname "$0")/.."

python3 -m harness env > "$OUT/env.txt" 2>&1
python3 -m harness env --json > "$OUT/env.json" 2>&1
for backend in jax torch; do
  timeout 180 python3 -m harness run scenarios/gpu.toml --backend "$backend" --out "$RESULTS" \
    > "$OUT/run-$backend.txt" 2>&1
  echo "exit $?" >> "$OUT/run-$backend.txt"
done
python3 -m harness compare "$RESULTS" --format md --out "$OUT/report.md" 2>> "$OUT/run-torch.txt"
python3 -m harness compare "$RESULTS" --format html --out "$OUT/report.html" 2>> "$OUT/run-torch.txt"
# The same fit with and without the harness's instrumentation, interleaved, on the GPU.
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} timeout 150 \
  python3 benchmarks/overhead.py --backend jax,torch --rounds "$ROUNDS" > "$OUT/overhead.txt" 2>&1
echo "exit $?" >> "$OUT/overhead.txt"
tar czf "$OUT/results.tgz" --exclude=models -C "$(dirname "$RESULTS")" "$(basename "$RESULTS")"
ls -l "$OUT"
