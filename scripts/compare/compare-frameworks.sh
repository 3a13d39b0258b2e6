#!/usr/bin/env bash
# Runs Kestrel's benchmark workloads in Kestrel, Keras (TensorFlow backend) and PyTorch on this
# machine and prints one table (Docs/Performance.md). Keras and PyTorch come from PyPI into a
# virtual environment outside the repository (reused when present):
#   KESTREL_COMPARE_VENV (default ~/.cache/kestrel-compare-venv)
# Usage: scripts/compare/compare-frameworks.sh [WORKLOAD ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${KESTREL_COMPARE_VENV:-$HOME/.cache/kestrel-compare-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -c "import tensorflow, keras, torch" 2>/dev/null || \
    "$venv/bin/pip" install -q 'tensorflow-cpu==2.21.*' 'keras==3.15.*' 'torch==2.15.*' numpy

workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(mlp-tutorial-b32 mlp-tutorial-b256 mlp-3x1024-b256 cnn-mnist-convnet-b128 lstm-b128 gru-b128 bigru-b128 attention-b128 cnn3d-ct-b4 convlstm-b8)

swift build -c release --product kestrel-bench >/dev/null
results=$(mktemp)
for w in "${workloads[@]}"; do
    # Each run in its own process, so peak memory is that run's; one timed epoch, like the
    # single second epoch timed in Keras and PyTorch.
    .build/release/kestrel-bench --json --rounds 1 --filter "$w" | "$venv/bin/python" -c '
import json, sys
for r in json.load(sys.stdin):
    if r["workload"] != sys.argv[1]:
        continue   # --filter matches by substring (gru-b128 is in bigru-b128)
    print(json.dumps(dict(framework="kestrel", workload=r["workload"], epoch_seconds=r["epochSeconds"],
        gemm_floor_seconds=r["gemmFloorSeconds"], inference_samples_per_second=r["inferenceSamplesPerSecond"],
        peak_resident_mb=r["peakResidentMegabytes"])))' "$w" >> "$results"
    for f in keras torch; do
        "$venv/bin/python" scripts/compare/frameworks.py --framework "$f" --workload "$w" >> "$results" || \
            echo "{\"framework\": \"$f\", \"workload\": \"$w\", \"error\": true}" >> "$results"
    done
done
"$venv/bin/python" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["workload"], {})[r["framework"]] = r
print("| workload | Kestrel s/epoch | sgemm floor s | Keras s/epoch | PyTorch s/epoch | Keras/Kestrel | PyTorch/Kestrel | peak MB (Kestrel / Keras / PyTorch) |")
print("|---|---|---|---|---|---|---|---|")
for w, r in by.items():
    k, tf, pt = r.get("kestrel", {}), r.get("keras", {}), r.get("torch", {})
    def f(d, key, fmt="%.2f"):
        return fmt % d[key] if key in d else "n/a"
    def ratio(d):
        return "%.1fx" % (d["epoch_seconds"] / k["epoch_seconds"]) if "epoch_seconds" in d and "epoch_seconds" in k else "n/a"
    print(f"| {w} | {f(k, 'epoch_seconds')} | {f(k, 'gemm_floor_seconds')} | {f(tf, 'epoch_seconds')} | "
          f"{f(pt, 'epoch_seconds')} | {ratio(tf)} | {ratio(pt)} | "
          f"{f(k, 'peak_resident_mb', '%.0f')} / {f(tf, 'peak_resident_mb', '%.0f')} / {f(pt, 'peak_resident_mb', '%.0f')} |")
versions = {r["framework"]: r.get("version") for r in rows if r.get("version")}
print("\nversions:", versions)
PY
rm -f "$results"
