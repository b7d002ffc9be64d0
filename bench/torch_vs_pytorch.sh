#!/usr/bin/env bash
# Throughput of greenlab's libtorch engine against PyTorch on the identical network, in one
# invocation: one epoch of SimpleCNN(2,3) and SimpleCNN(4,7) on real Fashion-MNIST, batch 512,
# 2 threads (override with THREADS, BATCH, DEVICE=cuda:0, REPEAT=n — the best run of each
# counts —, LIMIT=n to train on the first n images only, for a quick ratio on a busy machine).
# Installs PyTorch with all its dependencies into .venv (scripts/setup-libtorch.sh --full).
# Goal from the training issue: torch engine ≥ 1.2× PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}"
BATCH="${BATCH:-512}"
DEVICE="${DEVICE:-cpu}"
REPEAT="${REPEAT:-1}"
LIMIT="${LIMIT:-0}"
DATA_DIR="${DATA_DIR:-/usr/share/datasets/fashion-mnist}"

# shellcheck source=/dev/null
source scripts/setup-libtorch.sh --full
features=()
[[ "$DEVICE" == cuda* ]] && features=(--features cuda)
# The dev profile, which optimises every dependency (tch, torch-sys) at opt-level 3, shares
# its build with `cargo test`; the time is spent inside libtorch, whichever profile builds
# greenlab's thin glue. PROFILE=release rebuilds torch-sys's C++ wrappers for the release one.
PROFILE="${PROFILE:-dev}"
cargo build --profile "$PROFILE" -q -p greenlab-torch --example throughput "${features[@]}"
dir="$PROFILE"; [[ "$PROFILE" == dev ]] && dir=debug
bin="${CARGO_TARGET_DIR:-target}/$dir/examples/throughput"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

best() { # best images/s in a file of RESULT lines (ours) or JSON lines (PyTorch's)
    sed -n -e 's/.*images_per_s=\([0-9.]*\).*/\1/p' \
        -e 's/.*"images_per_second": \([0-9.e+-]*\).*/\1/p' "$1" | sort -g | tail -1
}

printf '%-16s %14s %14s %8s\n' network torch_img_s pytorch_img_s ratio
for net in "2 3" "4 7"; do
    set -- $net
    name="SimpleCNN($1,$2)"
    : >"$work/torch.txt"; : >"$work/pytorch.txt"
    for _ in $(seq "$REPEAT"); do
        "$bin" --conv "$1" --linear "$2" --batch "$BATCH" --threads "$THREADS" \
            --device "$DEVICE" --data-dir "$DATA_DIR" --layers "$work/layers.txt" --limit "$LIMIT" \
            | tee -a "$work/torch.txt" >&2
        # bench/pytorch_reference.py (shared with the Burn benchmark) builds the same SimpleCNN
        # from the same formula as crates/model and prints one JSON line.
        limit=(); [[ "$LIMIT" != 0 ]] && limit=(--limit-train "$LIMIT")
        "$GREENLAB_TORCH_PYTHON" bench/pytorch_reference.py --conv "$1" --linear "$2" \
            --batch-size "$BATCH" --threads "$THREADS" --device "$DEVICE" \
            --data-dir "$DATA_DIR" "${limit[@]}" | tee -a "$work/pytorch.txt" >&2
    done
    t="$(best "$work/torch.txt")"; p="$(best "$work/pytorch.txt")"
    awk -v n="$name" -v t="$t" -v p="$p" 'BEGIN { printf "%-16s %14.0f %14.0f %7.2fx\n", n, t, p, t / p }'
done
