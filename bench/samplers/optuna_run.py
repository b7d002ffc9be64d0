"""Runs Optuna's samplers on the sampler suite and writes one JSON line per study.

    python bench/samplers/optuna_run.py --out FILE [--functions a,b] [--seeds N | --seeds 0-19]
        [--budget 100] [--samplers gp,tpe,tpe-indep,tpe-mv,random]

Each study: `n_trials = budget` sequential trials of `study.optimize` with the in-memory
storage; the line holds every trial's parameters and value, and the study's process CPU time
(`time.process_time`, all threads) and wall time (`time.perf_counter`), divided by the number
of trials. The suite's objectives are trivial to compute, so both are the sampler's cost per
trial plus Optuna's own bookkeeping. Lines already in FILE for the same (sampler, function,
seed) with at least this budget are kept and not run again, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import optuna  # noqa: E402

import suite  # noqa: E402


def make_sampler(name: str, seed: int):
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "tpe-mv":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "tpe-indep":
        return optuna.samplers.TPESampler(seed=seed, multivariate=False)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SystemExit(f"unknown sampler {name}")


def suggest(trial, name, spec):
    kind = spec[0]
    if kind == "float":
        return trial.suggest_float(name, spec[1], spec[2], log=spec[3])
    if kind == "int":
        return trial.suggest_int(name, spec[1], spec[2])
    if kind == "cat":
        return trial.suggest_categorical(name, spec[1])
    raise ValueError(kind)


def run_one(sampler_name, fname, seed, budget):
    space, f, sd = suite.functions()[fname]
    sampler = make_sampler(sampler_name, seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    trials = []

    def objective(trial):
        params = {name: suggest(trial, name, spec) for name, spec in space}
        value = f(params)
        if sd > 0.0:
            value += sd * suite.noise(seed, trial.number)
        trials.append((params, value))
        return value

    c0, w0 = time.process_time(), time.perf_counter()
    study.optimize(objective, n_trials=budget)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {
        "sampler": "optuna-" + sampler_name,
        "function": fname,
        "seed": seed,
        "budget": budget,
        "params": [p for p, _ in trials],
        "values": [v for _, v in trials],
        "cpu_ms_per_trial": cpu * 1e3 / budget,
        "wall_ms_per_trial": wall * 1e3 / budget,
        "optuna": optuna.__version__,
    }


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    if "," in text:
        return [int(s) for s in text.split(",")]
    return list(range(int(text)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--functions", default=",".join(suite.functions()))
    ap.add_argument("--seeds", default="20")
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--samplers", default="gp,tpe,tpe-indep,random")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    known = suite.functions()
    fnames = [f for f in args.functions.split(",") if f]
    for f in fnames:
        if f not in known:
            raise SystemExit(f"unknown function {f}; known: {', '.join(known)}")
    done: dict[tuple[str, str, int], int] = {}
    if os.path.exists(args.out):
        with open(args.out) as fh:
            for line in fh:
                r = json.loads(line)
                key = (r["sampler"], r["function"], r["seed"])
                done[key] = max(done.get(key, 0), r["budget"])
    seeds = parse_seeds(args.seeds)
    with open(args.out, "a") as out:
        # Cheap samplers first, so that a subset gives a full table early.
        for sampler_name in args.samplers.split(","):
            for fname in fnames:
                t0 = time.perf_counter()
                ran = 0
                for seed in seeds:
                    key = ("optuna-" + sampler_name, fname, seed)
                    if done.get(key, 0) >= args.budget:
                        continue
                    out.write(json.dumps(run_one(sampler_name, fname, seed, args.budget)) + "\n")
                    out.flush()
                    ran += 1
                if ran:
                    print(
                        f"optuna {sampler_name:<9} {fname:<15} {ran} seeds in "
                        f"{time.perf_counter() - t0:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )


if __name__ == "__main__":
    main()
