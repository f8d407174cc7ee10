#!/usr/bin/env bash
# The CUDA path in under five minutes on one GPU: the CUDA tests, the engine benchmark on the GPU, and the full
# shipped lottery-silu preset (widths 2–256 × 20 seeds × 20k steps), each with its wall time.
#
#   bash benchmarks/gpu_check.sh        # from the repository root, with scaletui installed (pip install -e ".[test]")
#
# Fails fast: no CUDA device, a failing test or a step past its time limit ends the script with a non-zero code.
# Paste its output into the README's performance section: GPU figures there are "not measured" until then.
set -euo pipefail
cd "$(dirname "$0")/.."

python - <<'EOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device (torch.cuda.is_available() is False); nothing was run")
print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
EOF

runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT

timed() {  # timed LIMIT_SECONDS LABEL COMMAND...: run with a time limit, then print the wall time
    local limit=$1 label=$2 started
    shift 2
    started=$(date +%s%N)
    if ! timeout "$limit" "$@"; then
        echo "gpu_check: FAILED or past its ${limit} s: $label" >&2
        exit 1
    fi
    local ms=$((($(date +%s%N) - started) / 1000000))
    printf 'gpu_check: %-40s wall %d.%01d s\n' "$label" $((ms / 1000)) $((ms % 1000 / 100))
}

# The limits add up to under five minutes.
timed 45 "CUDA tests" python -m pytest -q -p no:cacheprovider tests/test_fused.py tests/test_engine.py -k "cuda or device"
timed 100 "engine benchmark on the GPU" python benchmarks/bench_engine.py --device cuda --repeats 1 \
    --contenders fused,general,limit
timed 150 "scaletui run lottery-silu (the full preset)" scaletui run lottery-silu --device cuda --runs-dir "$runs"
