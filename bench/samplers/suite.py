"""The sampler suite's functions, in Python, for the Optuna side of `bench/samplers.sh`.

The Rust benchmark (crates/tune/benches/samplers/) holds the same functions; it recomputes
every value Optuna saw from the parameters Optuna chose and stops on any mismatch, so the two
definitions cannot drift apart unnoticed. Everything is minimised. Parameter names are
zero-padded (x00, x01, ...) so that both sides order them alike.

Noisy functions draw their noise from (seed, trial number) with the same splitmix64 stream as
the Rust side, so both samplers face the same noise sequence; their score is the noise-free
value at the trial with the best *observed* value (what a user would pick).
"""

from __future__ import annotations

import csv
import math
import os

MASK = (1 << 64) - 1


def splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def noise(seed: int, number: int) -> float:
    """A standard normal draw fixed by (seed, trial number): Box-Muller on two splitmix64
    uniforms of the state `seed * 2^32 + number`."""
    state = ((seed & 0xFFFFFFFF) << 32 | (number & 0xFFFFFFFF)) ^ 0x5EED_0F_A015E
    state, a = splitmix64(state)
    state, b = splitmix64(state)
    u1 = ((a >> 11) + 0.5) / float(1 << 53)
    u2 = (b >> 11) / float(1 << 53)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def branin(x):
    b = 5.1 / (4.0 * math.pi**2)
    c = 5.0 / math.pi
    t = 1.0 / (8.0 * math.pi)
    return (x[1] - b * x[0] * x[0] + c * x[0] - 6.0) ** 2 + 10.0 * (1.0 - t) * math.cos(x[0]) + 10.0


HART_ALPHA = [1.0, 1.2, 3.0, 3.2]
HART_A = [
    [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
    [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
    [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
    [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
]
HART_P = [
    [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
    [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
    [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
    [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
]


def hartmann6(x):
    total = 0.0
    for i in range(4):
        e = 0.0
        for j in range(6):
            e += HART_A[i][j] * (x[j] - HART_P[i][j]) ** 2
        total += HART_ALPHA[i] * math.exp(-e)
    return -total


def rosenbrock(x):
    return sum(100.0 * (x[i + 1] - x[i] * x[i]) ** 2 + (1.0 - x[i]) ** 2 for i in range(len(x) - 1))


def ackley(x):
    n = float(len(x))
    s1 = sum(v * v for v in x) / n
    s2 = sum(math.cos(2.0 * math.pi * v) for v in x) / n
    return -20.0 * math.exp(-0.2 * math.sqrt(s1)) - math.exp(s2) + 20.0 + math.e


def levy(x):
    w = [1.0 + (v - 1.0) / 4.0 for v in x]
    head = math.sin(math.pi * w[0]) ** 2
    mid = sum((wi - 1.0) ** 2 * (1.0 + 10.0 * math.sin(math.pi * wi + 1.0) ** 2) for wi in w[:-1])
    tail = (w[-1] - 1.0) ** 2 * (1.0 + math.sin(2.0 * math.pi * w[-1]) ** 2)
    return head + mid + tail


def rastrigin(x):
    return 10.0 * len(x) + sum(v * v - 10.0 * math.cos(2.0 * math.pi * v) for v in x)


def styblinski_tang(x):
    return 0.5 * sum(v**4 - 16.0 * v * v + 5.0 * v for v in x)


def log_valley(x):
    # Learning rate, weight decay (both log scale) and momentum: a bent valley in log space.
    a = (math.log10(x[0]) + 3.0) / 2.0
    b = (math.log10(x[1]) + 3.5) / 1.5
    return a * a + 10.0 * (b - a * a) ** 2 + 4.0 * (x[2] - 0.9) ** 2


CAT_OFFSET = {"a": 1.5, "b": 0.0, "c": 3.0, "d": 0.7}
CAT_PENALTY = {"p": 0.4, "q": 2.0, "r": 0.0}


def cat_branin(p):
    x0, x1 = p["x00"], p["x01"]
    if p["c02"] == "flip":
        x1 = 15.0 - x1
    return branin([x0, x1]) + CAT_OFFSET[p["c00"]] + CAT_PENALTY[p["c01"]]


def int_styblinski(p):
    # x00..x02: integers in [-10, 10] halved; x03, x04: integers in [-5, 5].
    x = [p["x00"] / 2.0, p["x01"] / 2.0, p["x02"] / 2.0, float(p["x03"]), float(p["x04"])]
    return styblinski_tang(x)


def st_1d(v):
    return 0.5 * (v**4 - 16.0 * v * v + 5.0 * v)


TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fmnist-simplecnn.csv")


def load_table():
    """(lr levels, {(lr index, batch_size, conv, relu): test error}) from the shipped table."""
    rows = {}
    with open(TABLE_PATH, newline="") as f:
        for r in csv.DictReader(f):
            key = (float(r["lr"]), int(r["batch_size"]), int(r["conv"]), r["relu"])
            rows.setdefault(key, []).append(1.0 - float(r["accuracy"]))
    lrs = sorted({k[0] for k in rows})
    table = {}
    for (lr, bs, conv, relu), errs in rows.items():
        table[(lrs.index(lr), bs, conv, relu)] = sum(errs) / len(errs)
    return lrs, table


_TABLE = None


def fmnist_table(p):
    global _TABLE
    if _TABLE is None:
        _TABLE = load_table()
    lrs, table = _TABLE
    # Nearest measured learning rate in log space.
    i = min(range(len(lrs)), key=lambda k: abs(math.log(lrs[k]) - math.log(p["lr"])))
    return table[(i, int(p["batch_size"]), int(p["conv"]), p["relu"])]


def fmnist_optimum():
    lrs, table = load_table() if _TABLE is None else _TABLE
    return min(table.values())


def float_space(bounds):
    return [("x%02d" % i, ("float", lo, hi, False)) for i, (lo, hi) in enumerate(bounds)]


def vec(p, d):
    return [p["x%02d" % i] for i in range(d)]


def functions():
    """name -> (space [(name, spec)], f(params dict) -> value, noisy sd)."""
    fs = {
        "branin": (float_space([(-5.0, 10.0), (0.0, 15.0)]), lambda p: branin(vec(p, 2)), 0.0),
        "hartmann6": (float_space([(0.0, 1.0)] * 6), lambda p: hartmann6(vec(p, 6)), 0.0),
        "rosenbrock4": (float_space([(-2.048, 2.048)] * 4), lambda p: rosenbrock(vec(p, 4)), 0.0),
        "ackley5": (float_space([(-32.768, 32.768)] * 5), lambda p: ackley(vec(p, 5)), 0.0),
        "levy5": (float_space([(-10.0, 10.0)] * 5), lambda p: levy(vec(p, 5)), 0.0),
        "rastrigin4": (float_space([(-5.12, 5.12)] * 4), lambda p: rastrigin(vec(p, 4)), 0.0),
        "styblinski8": (float_space([(-5.0, 5.0)] * 8), lambda p: styblinski_tang(vec(p, 8)), 0.0),
        "hartmann6in20": (
            float_space([(0.0, 1.0)] * 20),
            lambda p: hartmann6(vec(p, 6)),
            0.0,
        ),
        "logvalley3": (
            [
                ("x00", ("float", 1e-5, 1.0, True)),
                ("x01", ("float", 1e-6, 1e-1, True)),
                ("x02", ("float", 0.0, 0.99, False)),
            ],
            lambda p: log_valley(vec(p, 3)),
            0.0,
        ),
        "intstyblinski5": (
            [("x%02d" % i, ("int", -10, 10)) for i in range(3)]
            + [("x%02d" % i, ("int", -5, 5)) for i in range(3, 5)],
            int_styblinski,
            0.0,
        ),
        "catbranin": (
            float_space([(-5.0, 10.0), (0.0, 15.0)])
            + [
                ("c00", ("cat", ["a", "b", "c", "d"])),
                ("c01", ("cat", ["p", "q", "r"])),
                ("c02", ("cat", ["plain", "flip"])),
            ],
            cat_branin,
            0.0,
        ),
        "hartmann6noisy": (float_space([(0.0, 1.0)] * 6), lambda p: hartmann6(vec(p, 6)), 0.1),
    }
    if os.path.exists(TABLE_PATH):
        lrs, _ = load_table()
        fs["fmnist"] = (
            [
                ("lr", ("float", min(lrs), max(lrs), True)),
                ("batch_size", ("cat", [64, 128, 256])),
                ("conv", ("int", 1, 4)),
                ("relu", ("cat", ["true", "false"])),
            ],
            fmnist_table,
            0.0,
        )
    return fs
