#!/usr/bin/env bash
# Training throughput of greenlab's engines against PyTorch, measured in the same invocation.
#
#   bench/train_throughput.sh [--threads N] [--rounds R] [--limit-train N] [--data-dir DIR] [--torch]
#
# Builds `greenlab` in release mode (with the torch engine too when --torch is given or the
# variable LIBTORCH is set), then trains SimpleCNN(2,3) and SimpleCNN(4,7) for one epoch of
# Fashion-MNIST, batch 512, N threads (default 2), with each engine and with PyTorch running the
# identical model (bench/pytorch_reference.py) in the venv of scripts/setup-libtorch.sh --full.
# Prints images/s (training only: data in memory, evaluation excluded) and each engine's ratio
# to PyTorch. The engines run interleaved, R rounds (default 3): one round runs every engine once
# per network, so slow phases of a noisy machine hit all of them; each round's ratio is taken
# against that round's PyTorch run, and the summary gives the median over rounds (and the
# range). Goals (issue 3): burn ≥ 0.8×, torch ≥ 1.2×.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
threads=2
rounds=3
limit=""
data_dir="/usr/share/datasets/fashion-mnist"
with_torch=0
[[ -n "${LIBTORCH:-}" ]] && with_torch=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --limit-train) limit="$2"; shift 2 ;;
        --data-dir) data_dir="$2"; shift 2 ;;
        --torch) with_torch=1; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

results="$work/results.tsv"
: >"$results"
printf '%-6s %-16s %-8s %12s %10s\n' "round" "network" "engine" "images/s" "vs PyTorch"
for round in $(seq 1 "$rounds"); do
    for net in "2 3" "4 7"; do
        read -r conv linear <<<"$net"
        name="SimpleCNN($conv,$linear)"
        ref="$("$python" bench/pytorch_reference.py --conv "$conv" --linear "$linear" \
            --batch-size 512 --threads "$threads" --data-dir "$data_dir" "${py_limit[@]}" 2>/dev/null)"
        ref_ips="$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["images_per_second"])' "$ref")"
        printf '%-6s %-16s %-8s %12.0f %10s\n' "$round" "$name" "pytorch" "$ref_ips" "1.00"
        printf '%s\t%s\t%s\t%s\n' "$name" pytorch "$ref_ips" 1 >>"$results"
        for engine in "${engines[@]}"; do
            out="$work/$engine-$conv-$linear-$round"
            "$bin" train --model simple-cnn --conv "$conv" --linear "$linear" --epochs 1 \
                --batch-size 512 --threads "$threads" --engine "$engine" --data-dir "$data_dir" \
                --limit-test 512 --meter estimate --out "$out" "${limit_args[@]}" 2>/dev/null >/dev/null
            ips="$(ips_of "$out/result.json")"
            ratio="$("$python" -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}")' "$ips" "$ref_ips")"
            printf '%-6s %-16s %-8s %12.0f %10s\n' "$round" "$name" "$engine" "$ips" "$ratio"
            printf '%s\t%s\t%s\t%s\n' "$name" "$engine" "$ips" "$ratio" >>"$results"
        done
    done
done
echo
echo "median over $rounds round(s) (range in brackets):"
"$python" - "$results" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
keys = []
for net, engine, _, _ in rows:
    if (net, engine) not in keys:
        keys.append((net, engine))
print(f"{'network':<16} {'engine':<8} {'images/s':>10} {'vs PyTorch':>12} {'range':>14}")
for net, engine in keys:
    ips = [float(r[2]) for r in rows if (r[0], r[1]) == (net, engine)]
    ratio = [float(r[3]) for r in rows if (r[0], r[1]) == (net, engine)]
    print(f"{net:<16} {engine:<8} {statistics.median(ips):>10.0f} {statistics.median(ratio):>12.2f} "
          f"{'[%.2f, %.2f]' % (min(ratio), max(ratio)):>14}")
PY
