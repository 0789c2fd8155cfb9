#!/usr/bin/env bash
# The GPU check (about 5 minutes on one CUDA GPU): CUDA tests, the timing benchmarks on CUDA,
# and a one-scenario run of the harness on CUDA. Results go to the directory given as $1.
#
#   bash benchmarks/gpu_check.sh OUT_DIR
#
# Writes OUT_DIR/{env.txt, pytest_cuda.txt, bench_cuda.txt, run.txt, run/ (results), status.txt,
# gpu_results.json} and exits non-zero if any step failed (every step runs regardless). Copy
# gpu_results.json to benchmarks/ and run `python benchmarks/report.py --render`: PERFORMANCE.md then
# shows each step's outcome and time with the card named.
set -u
OUT=${1:?usage: benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
status=0
step() {  # step NAME TIMEOUT_S CMD...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  echo "$name rc=$rc $((SECONDS - t0))s" >> "$OUT/status.txt"
  [ $rc -ne 0 ] && status=1
  return 0
}
: > "$OUT/status.txt"
step env 60 "$PY" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
# 1. every CUDA-marked test (timer on the device's stream, peak above start, no syncs in LRP, CPU/GPU agreement)
step pytest_cuda 150 "$PY" -m pytest -m cuda tests -q -p no:cacheprovider
# 2. the timing benchmarks on CUDA (relevance ordering vs its forward floor and Quantus; the timer picks CUDA events)
step bench_cuda 120 "$PY" benchmarks/bench_relevance_ordering.py
# 3. one scenario end to end on CUDA
step run 240 "$PY" -m hansbench.bench.cli run --suite benchmarks/gpu_one_scenario.toml --device cuda \
  --out "$OUT/run" --no-progress --no-figures
"$PY" - "$OUT" <<'PYEOF'
import datetime, json, pathlib, sys
out = pathlib.Path(sys.argv[1])
env = (out / "env.txt").read_text().strip().splitlines()
rows = []
for line in (out / "status.txt").read_text().splitlines():
    name, rc, secs = line.split()
    ok = rc == "rc=0"
    last = [l for l in (out / f"{name}.txt").read_text().strip().splitlines() if l.strip()][-1:] if (out / f"{name}.txt").exists() else []
    rows.append({"what": name, "value": f"{secs}, {'passed' if ok else 'FAILED ' + rc}: {last[0][:120].replace('|', '/') if last else ''}",
                 "verdict": "met" if ok else "**missed**"})
json.dump({"card": env[-1] if env else "?", "date": datetime.date.today().isoformat(), "rows": rows},
          open(out / "gpu_results.json", "w"), indent=1)
PYEOF
cat "$OUT/status.txt"
exit $status
