#!/usr/bin/env bash
# Training throughput of greenlab's engines against PyTorch, measured in the same invocation.
#
#   bench/train_throughput.sh [--threads N] [--limit-train N] [--data-dir DIR] [--torch]
#
# Builds `greenlab` in release mode (with the torch engine too when --torch is given or the
# variable LIBTORCH is set), then trains SimpleCNN(2,3) and SimpleCNN(4,7) for one epoch of
# Fashion-MNIST, batch 512, N threads (default 2), with each engine and with PyTorch running the
# identical model (bench/pytorch_reference.py) in the venv of scripts/setup-libtorch.sh --full.
# Prints images/s (training only: data in memory, evaluation excluded) and each engine's ratio
# to PyTorch. Goals (issue 3): burn ≥ 0.8×, torch ≥ 1.2×.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
threads=2
limit=""
data_dir="/usr/share/datasets/fashion-mnist"
with_torch=0
[[ -n "${LIBTORCH:-}" ]] && with_torch=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --limit-train) limit="$2"; shift 2 ;;
        --data-dir) data_dir="$2"; shift 2 ;;
        --torch) with_torch=1; shift ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
engines=(burn)
if [[ $with_torch == 1 ]]; then
    features=(--features torch)
    engines+=(torch)
fi
echo "train_throughput: cargo build --release -p greenlab-cli ${features[*]}" >&2
cargo build --release -p greenlab-cli "${features[@]}" >&2
bin="${CARGO_TARGET_DIR:-$repo/target}/release/greenlab"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
limit_args=()
py_limit=()
if [[ -n "$limit" ]]; then
    limit_args=(--limit-train "$limit")
    py_limit=(--limit-train "$limit")
fi

ips_of() { "$python" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["epochs"][0]["images_per_second"])' "$1"; }

printf '%-28s %-8s %14s %10s\n' "network" "engine" "images/s" "vs PyTorch"
for net in "2 3" "4 7"; do
    read -r conv linear <<<"$net"
    name="SimpleCNN($conv,$linear)"
    ref="$("$python" bench/pytorch_reference.py --conv "$conv" --linear "$linear" \
        --batch-size 512 --threads "$threads" --data-dir "$data_dir" "${py_limit[@]}")"
    ref_ips="$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["images_per_second"])' "$ref")"
    printf '%-28s %-8s %14.0f %10s\n' "$name" "pytorch" "$ref_ips" "1.00"
    for engine in "${engines[@]}"; do
        out="$work/$engine-$conv-$linear"
        "$bin" train --model simple-cnn --conv "$conv" --linear "$linear" --epochs 1 \
            --batch-size 512 --threads "$threads" --engine "$engine" --data-dir "$data_dir" \
            --limit-test 512 --meter estimate --out "$out" "${limit_args[@]}" 2>/dev/null >/dev/null
        ips="$(ips_of "$out/result.json")"
        ratio="$("$python" -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}")' "$ips" "$ref_ips")"
        printf '%-28s %-8s %14.0f %10s\n' "$name" "$engine" "$ips" "$ratio"
    done
done
