#!/usr/bin/env bash
# Regenerates bench/samplers/fmnist-simplecnn.csv, the table behind the sampler suite's `fmnist`
# function: greenlab's own `tune` command runs the grid of fmnist-table.toml (168 trainings of
# SimpleCNN by the Burn engine on 2048 Fashion-MNIST training images for one epoch, tested on
# 1000; seed 1), then the study is exported and cut down to the columns the
# suite reads. About 10 minutes on a 2-core machine.
#
#   bench/samplers/fmnist-table.sh [--greenlab PATH]   # default: cargo run --release -p greenlab-cli
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
greenlab=(cargo run --quiet --release -p greenlab-cli --)
if [[ "${1:-}" == "--greenlab" ]]; then greenlab=("$2"); fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$repo"
"${greenlab[@]}" tune --config "$here/fmnist-table.toml" --storage "sqlite://$work/table.db" \
    --meter estimate
"${greenlab[@]}" study export --storage "sqlite://$work/table.db" \
    --study fmnist-simplecnn-table --out "$work/trials.csv"
python3 - "$work/trials.csv" "$here/fmnist-simplecnn.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
keep = [r for r in rows if r.get("state") == "complete"]
if len(keep) != len(rows):
    sys.exit(f"{len(rows) - len(keep)} trials did not complete; not writing the table")
acc = next(c for c in rows[0] if c.startswith("value_"))
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["lr", "batch_size", "conv", "relu", "accuracy", "energy_j"])
    def key(r):
        return (float(r["param_lr"]), int(r["param_batch_size"]), int(r["param_conv"]), r["param_relu"])
    for r in sorted(keep, key=key):
        w.writerow([repr(float(r["param_lr"])), r["param_batch_size"], r["param_conv"],
                    r["param_relu"].lower(), r[acc], r["energy_j"]])
print(f"wrote {len(keep)} rows to {sys.argv[2]}")
PY
