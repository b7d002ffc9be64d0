#!/usr/bin/env bash
# The sampler suite, greenlab against Optuna 5.0 in one run: creates a venv with optuna==5.0.0
# and what its GPSampler needs (scipy, torch), runs Optuna's samplers on the suite's functions
# (bench/samplers/optuna_run.py), then the Rust benchmark, which runs greenlab's samplers on
# the same functions, seeds and budgets, recomputes every value Optuna reported and prints one
# table with both.
#
#   bench/samplers.sh [--quick] [--functions a,b] [--seeds 20|0-9] [--budgets 20,50,100]
#                     [--optuna-samplers gp,tpe,tpe-indep,random] [--gp-seeds 5] [--reuse]
#                     [-- extra arguments for the Rust benchmark, e.g. --parallel 8]
#
# --quick: 5 seeds, budgets 20 and 50. --gp-seeds: fewer seeds for Optuna's GPSampler (about
# 1 s of CPU per trial at 50 trials; the other samplers take milliseconds). Optuna's studies go
# to target/samplers/optuna.jsonl; a study already there (same sampler, function, seed, at
# least the budget) is not run again unless the file is removed, so an interrupted run
# resumes. The venv: $GREENLAB_OPTUNA_VENV, default .venv-optuna at the repository root (torch
# is PyPI's CUDA build, about 3 GB with its nvidia-* dependencies; only its CPU side is used).
# Both sides run single-threaded (OMP_NUM_THREADS=1; Optuna's GPSampler also limits torch to one
# thread itself), so CPU time per trial compares like with like. Heavy runs: prefix with nice.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${GREENLAB_OPTUNA_VENV:-$repo/.venv-optuna}"
seeds=20
budgets="20,50,100"
functions=""
optuna_samplers="gp,tpe,tpe-indep,random"
gp_seeds=""
rest=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) seeds=5; budgets="20,50"; shift ;;
        --functions) functions="$2"; shift 2 ;;
        --seeds) seeds="$2"; shift 2 ;;
        --budgets) budgets="$2"; shift 2 ;;
        --optuna-samplers) optuna_samplers="$2"; shift 2 ;;
        --gp-seeds) gp_seeds="$2"; shift 2 ;;
        --) shift; rest=("$@"); break ;;
        -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "samplers.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import optuna, torch, scipy; assert optuna.__version__ == "5.0.0"' 2>/dev/null; then
    echo "samplers.sh: setting up $venv (optuna 5.0.0, scipy, torch 2.11.0)" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        optuna==5.0.0 scipy torch==2.11.0 greenlet
fi
export OMP_NUM_THREADS=1
out="$repo/target/samplers/optuna.jsonl"
mkdir -p "$(dirname "$out")"
max_budget="${budgets##*,}"
fargs=()
[[ -n "$functions" ]] && fargs=(--functions "$functions")
for s in ${optuna_samplers//,/ }; do
    n="$seeds"
    [[ "$s" == gp && -n "$gp_seeds" ]] && n="$gp_seeds"
    "$venv/bin/python" "$repo/bench/samplers/optuna_run.py" --out "$out" "${fargs[@]}" \
        --seeds "$n" --budget "$max_budget" --samplers "$s"
done
cd "$repo"
cargo bench -p greenlab-tune --bench samplers -- --optuna "$out" --seeds "$seeds" \
    --budgets "$budgets" "${fargs[@]}" "${rest[@]}"
