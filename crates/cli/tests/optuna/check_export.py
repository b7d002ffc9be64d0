"""Opens a `greenlab study export --format optuna` file with the real Optuna and compares every
trial with greenlab's own JSON export of the same study.

    python check_export.py study-optuna.db study.json

Prints "N trials match" and exits 0, or lists every difference and exits 1. Run by
crates/cli/tests/cluster_cli.rs with the venv of scripts/setup-optuna.sh.
"""

import json
import math
import sys
from datetime import datetime, timezone

import optuna
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

STATES = {
    "waiting": TrialState.WAITING,
    "running": TrialState.RUNNING,
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
    "diverged": TrialState.FAIL,
}


def close(a, b):
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


def main(db_path, json_path):
    doc = json.load(open(json_path))
    definition = doc["definition"]
    name = doc["study"]
    problems = []

    def check(ok, what):
        if not ok:
            problems.append(what)

    # The storage as a user opens it: load_study and the RDB storage's own checks.
    storage = optuna.storages.RDBStorage(f"sqlite:///{db_path}")
    check(
        [s.study_name for s in optuna.get_all_study_summaries(storage)] == [name],
        "study names",
    )
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db_path}")
    directions = [o["direction"].upper() for o in definition["objectives"]]
    check(
        [d.name for d in study.directions] == directions,
        f"directions {study.directions} vs {directions}",
    )
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    expected = {t["number"]: t for t in doc["trials"]}
    check(sorted(trials) == sorted(expected), f"trial numbers {sorted(trials)} vs {sorted(expected)}")
    space = definition["space"]
    for number, g in expected.items():
        t = trials.get(number)
        if t is None:
            continue
        where = f"trial {number}"
        state = STATES[g["state"]]
        values = g["values"]
        n_obj = len(definition["objectives"])
        # A complete trial keeps its values; a pruned one its last value (one objective).
        if g["state"] == "pruned" and (n_obj != 1 or values is None):
            values = None
        if g["state"] not in ("complete", "pruned"):
            values = None
        check(t.state == state, f"{where}: state {t.state} vs {g['state']}")
        if values is None:
            check(t.values is None, f"{where}: values {t.values} vs none")
        else:
            check(
                t.values is not None
                and len(t.values) == len(values)
                and all(close(a, b) for a, b in zip(t.values, values)),
                f"{where}: values {t.values} vs {values}",
            )
        check(set(t.params) == set(g["params"]), f"{where}: params {t.params} vs {g['params']}")
        for p, v in g["params"].items():
            d = t.distributions.get(p)
            spec = space[p]
            if spec["type"] == "float":
                ok = isinstance(d, FloatDistribution) and d.low == spec["low"] and d.high == spec["high"] and d.log == spec.get("log", False)
                check(ok and close(t.params[p], v), f"{where}: {p}={t.params.get(p)} {d} vs {v} {spec}")
            elif spec["type"] == "int":
                ok = isinstance(d, IntDistribution) and d.low == spec["low"] and d.high == spec["high"]
                check(ok and t.params[p] == v, f"{where}: {p}={t.params.get(p)} {d} vs {v} {spec}")
            else:
                ok = isinstance(d, CategoricalDistribution) and list(d.choices) == spec["choices"]
                check(ok and t.params[p] == v, f"{where}: {p}={t.params.get(p)} {d} vs {v} {spec}")
        steps = {i["step"]: i["value"] for i in g["intermediate"]}
        check(
            sorted(t.intermediate_values) == sorted(steps)
            and all(close(t.intermediate_values[s], v) for s, v in steps.items()),
            f"{where}: intermediate {t.intermediate_values} vs {steps}",
        )
        # energy_j is the energy attributed to the trial's process tree; machine_energy_j the
        # whole machine's over the same window.
        energy = g["energy"]["attributed"] if g.get("energy") else None
        check(
            close(t.user_attrs.get("energy_j"), energy),
            f"{where}: energy_j {t.user_attrs.get('energy_j')} vs {energy}",
        )
        machine = g["energy"]["total"] if g.get("energy") else None
        check(
            close(t.user_attrs.get("machine_energy_j"), machine),
            f"{where}: machine_energy_j {t.user_attrs.get('machine_energy_j')} vs {machine}",
        )
        if g.get("energy"):
            check(t.user_attrs.get("energy_source") is not None, f"{where}: no energy_source")
        check(t.user_attrs.get("greenlab_state") == g["state"], f"{where}: greenlab_state")
        for i in g["intermediate"]:
            got = t.user_attrs.get("intermediate_energy_j", {}).get(str(i["step"]))
            check(close(got, i["energy"]), f"{where}: energy at step {i['step']}: {got} vs {i['energy']}")
        host = (g.get("process") or {}).get("host")
        check(t.user_attrs.get("host") == host, f"{where}: host {t.user_attrs.get('host')} vs {host}")
        if "error" in g["attrs"]:
            check(t.user_attrs.get("error") == g["attrs"]["error"], f"{where}: error")
        for key, when in (("started_at", t.datetime_start), ("finished_at", t.datetime_complete)):
            if g.get(key) is None:
                check(when is None, f"{where}: {key} {when} vs none")
            else:
                # Optuna returns naive local time.
                got = when.astimezone(timezone.utc).timestamp() if when else None
                check(got is not None and abs(got - g[key]) < 1e-3, f"{where}: {key} {when} vs {g[key]}")
    # What optuna-dashboard reads first: the best trial(s) of the study.
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if complete and len(directions) == 1:
        best = max if directions[0] == "MAXIMIZE" else min
        check(
            close(study.best_value, best(t.value for t in complete)),
            f"best value {study.best_value}",
        )
    if complete and len(directions) == 2:
        check(len(study.best_trials) >= 1, "no Pareto front")
    if problems:
        print("\n".join(problems))
        return 1
    print(f"{len(expected)} trials match")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
