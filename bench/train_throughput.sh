#!/usr/bin/env bash
# Training throughput of greenlab's engines against PyTorch, measured in the same invocation.
#
#   bench/train_throughput.sh [--torch] [--rounds R] [--threads N] [--isa native|avx2]
#                             [--networks "2,3 4,7"] [--limit-train N] [--data-dir DIR]
#
# Builds `greenlab` in release mode (with the torch engine too when --torch is given or the
# variable LIBTORCH is set), then trains SimpleCNN(2,3) and SimpleCNN(4,7) for one epoch of
# Fashion-MNIST, batch 512, N threads (default 2), with each engine and with PyTorch running the
# identical model (bench/pytorch_reference.py, venv of scripts/setup-libtorch.sh --full) twice:
# as a user runs it and with the glibc heap settings greenlab sets for itself. R interleaved
# rounds (default 3), each run its own process. Prints the machine (CPU, instruction sets,
# cores, threads, versions, load), every run, and per network and runner the median images/s,
# achieved GFLOP/s against a measured GEMM peak, peak resident memory, and greenlab's ratio to
# each PyTorch variant and to the faster one (the headline). --isa avx2 runs both sides as on a
# machine without AVX-512. Goals (issue 14): burn ≥ 1.5×, torch ≥ 1.2× the faster PyTorch.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
driver_args=()
with_torch=0
[[ -n "${LIBTORCH:-}" ]] && with_torch=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --threads|--rounds|--limit-train|--data-dir|--isa|--networks)
            [[ $# -ge 2 ]] || { echo "train_throughput: $1 needs a value" >&2; exit 2; }
            driver_args+=("$1" "$2"); shift 2 ;;
        --torch) with_torch=1; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "train_throughput: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

cd "$repo"
venv="${GREENLAB_VENV:-$repo/.venv}"
python="$venv/bin/python"
if ! "$python" -c 'import torch' >/dev/null 2>&1; then
    echo "train_throughput: installing PyTorch into $venv (scripts/setup-libtorch.sh --full)" >&2
    GREENLAB_VENV="$venv" bash scripts/setup-libtorch.sh --full >&2
fi
if [[ $with_torch == 1 && -z "${LIBTORCH:-}" ]]; then
    # shellcheck source=/dev/null
    GREENLAB_VENV="$venv" source scripts/setup-libtorch.sh >&2
fi

features=()
engines="burn"
if [[ $with_torch == 1 ]]; then
    features=(--features torch)
    engines="burn,torch"
fi
echo "train_throughput: cargo build --release -p greenlab-cli ${features[*]}" >&2
cargo build --release -p greenlab-cli "${features[@]}" >&2
bin="${CARGO_TARGET_DIR:-$repo/target}/release/greenlab"

exec "$python" "$repo/bench/train_throughput.py" --repo "$repo" --greenlab "$bin" \
    --python "$python" --engines "$engines" "${driver_args[@]}"
