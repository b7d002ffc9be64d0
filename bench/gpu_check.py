#!/usr/bin/env python3
"""The measuring half of bench/gpu_check.sh: every GPU check of issue 14 in one run.

1. Throughput. greenlab's libtorch engine on the GPU (training set resident on the device,
   statistics read every 8 steps, flat Adam, cuDNN autotuning) against PyTorch eager on the
   same GPU running the identical model (bench/pytorch_reference.py --device cuda), on
   SimpleCNN(2,3) and (4,7), in interleaved rounds. PyTorch runs as a user runs it
   ("pytorch") and with the settings greenlab gives itself ("pytorch+same": cuDNN autotuning
   and greenlab's heap settings); the headline ratio is against the faster. Throughput counts
   the epochs after a warm-up epoch, from each side's own epoch windows (evaluation and
   shuffling outside them on both sides).
2. Energy. While each side trains a few epochs of SimpleCNN(4,7), a sampler reads the GPU's
   NVML energy counter and its power (the 1 s average NVML reports as power usage, and the
   instantaneous field where the driver has it) every 10 ms. For the same epochs it prints the
   counter's difference, the integral of each power reading, greenlab's own reading (its
   `--meter nvml`), and joules per 1,000 training images.

Nothing here needs Rust: the greenlab binary is built elsewhere with `--features torch-cuda`
and carried (bench/gpu_check.sh says how).
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_throughput import HEAP, fmt_range, run_measured  # noqa: E402

# --------------------------------------------------------------------------------------------
# NVML through ctypes (no Python package needed).
# --------------------------------------------------------------------------------------------
NVML_FI_DEV_POWER_INSTANT = 186


class _Value(ctypes.Union):
    _fields_ = [("d", ctypes.c_double), ("ui", ctypes.c_uint), ("ul", ctypes.c_ulong),
                ("ull", ctypes.c_ulonglong), ("sll", ctypes.c_longlong)]


class _FieldValue(ctypes.Structure):
    _fields_ = [("fieldId", ctypes.c_uint), ("scopeId", ctypes.c_uint),
                ("timestamp", ctypes.c_longlong), ("latencyUsec", ctypes.c_longlong),
                ("valueType", ctypes.c_int), ("nvmlReturn", ctypes.c_int), ("value", _Value)]


class Nvml:
    def __init__(self, index=0):
        self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        self._check(self.lib.nvmlInit_v2(), "nvmlInit")
        self.handle = ctypes.c_void_p()
        self._check(self.lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index),
                                                           ctypes.byref(self.handle)),
                    "nvmlDeviceGetHandleByIndex")
        self.has_instant = self.instant_mw() is not None

    @staticmethod
    def _check(code, what):
        if code != 0:
            raise RuntimeError(f"{what} failed with NVML error {code}")

    def energy_mj(self):
        e = ctypes.c_ulonglong()
        self._check(self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle, ctypes.byref(e)),
                    "nvmlDeviceGetTotalEnergyConsumption")
        return e.value

    def power_mw(self):
        p = ctypes.c_uint()
        self._check(self.lib.nvmlDeviceGetPowerUsage(self.handle, ctypes.byref(p)),
                    "nvmlDeviceGetPowerUsage")
        return p.value

    def instant_mw(self):
        field = _FieldValue()
        field.fieldId = NVML_FI_DEV_POWER_INSTANT
        code = self.lib.nvmlDeviceGetFieldValues(self.handle, 1, ctypes.byref(field))
        if code != 0 or field.nvmlReturn != 0:
            return None
        return field.value.ui


class Sampler(threading.Thread):
    """(unix time, energy counter mJ, power mW, instantaneous power mW or None) every period."""

    def __init__(self, nvml, period=0.01):
        super().__init__(daemon=True)
        self.nvml, self.period, self.samples = nvml, period, []
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            inst = self.nvml.instant_mw() if self.nvml.has_instant else None
            self.samples.append((time.time(), self.nvml.energy_mj(), self.nvml.power_mw(), inst))
            time.sleep(self.period)

    def stop(self):
        self.stop_event.set()
        self.join()

    def window(self, t0, t1):
        """Counter difference and the trapezoid integrals of both power readings, in joules."""
        s = [x for x in self.samples if t0 <= x[0] <= t1]
        if len(s) < 2:
            return None
        counter = (s[-1][1] - s[0][1]) / 1e3
        avg = sum((b[0] - a[0]) * (a[2] + b[2]) / 2e3 for a, b in zip(s, s[1:]))
        inst = None
        if all(x[3] is not None for x in s):
            inst = sum((b[0] - a[0]) * (a[3] + b[3]) / 2e3 for a, b in zip(s, s[1:]))
        return {"seconds": s[-1][0] - s[0][0], "counter_j": counter, "power_j": avg,
                "instant_j": inst, "samples": len(s)}


# --------------------------------------------------------------------------------------------
# Runs.
# --------------------------------------------------------------------------------------------
def reference_cmd(a, conv, linear, epochs, same):
    cmd = [a.python, os.path.join(a.repo, "bench/pytorch_reference.py"), "--conv", str(conv),
           "--linear", str(linear), "--batch-size", "512", "--device", "cuda",
           "--data-dir", a.data_dir, "--warmup-epochs", "1", "--epochs", str(epochs - 1)]
    return cmd + (["--cudnn-benchmark"] if same else [])


def greenlab_cmd(a, conv, linear, epochs, out, meter="estimate"):
    return [a.greenlab, "train", "--model", "simple-cnn", "--conv", str(conv), "--linear",
            str(linear), "--epochs", str(epochs), "--batch-size", "512", "--engine", "torch",
            "--device", "cuda:0", "--data-dir", a.data_dir, "--limit-test", "512",
            "--meter", meter, "--out", out]


def reference_rate(result):
    """Images/s over the timed epochs' own windows."""
    seconds = sum(t1 - t0 for t0, t1 in result["epoch_unix_times"])
    return result["images"] / seconds


def greenlab_rate(result):
    epochs = result["epochs"][1:]  # the first is the warm-up
    return sum(e["examples"] for e in epochs) / sum(e["duration"] for e in epochs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--greenlab", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=4, help="per throughput run, warm-up included")
    ap.add_argument("--energy-epochs", type=int, default=6)
    a = ap.parse_args()
    work = "/tmp/gpu-check"
    os.makedirs(work, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in HEAP}

    print("== environment")
    print(subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,power.limit,clocks.max.sm",
                          "--format=csv,noheader"], capture_output=True, text=True).stdout.strip())
    probe = subprocess.run([a.python, "-c", "import torch, json; print(json.dumps({'torch': "
                            "torch.__version__, 'cuda': torch.version.cuda, 'cudnn': "
                            "torch.backends.cudnn.version(), 'gpu': torch.cuda.get_device_name(0)}))"],
                           capture_output=True, text=True, env=env)
    print(probe.stdout.strip() or probe.stderr.strip())
    peak = subprocess.run([a.python, "-c", (
        "import torch, time\n"
        "torch.backends.cuda.matmul.allow_tf32 = False\n"
        "a = torch.randn(8192, 8192, device='cuda'); b = torch.randn(8192, 8192, device='cuda')\n"
        "for _ in range(3): a @ b\n"
        "torch.cuda.synchronize(); t = time.perf_counter()\n"
        "for _ in range(10): a @ b\n"
        "torch.cuda.synchronize(); print(2 * 8192**3 * 10 / (time.perf_counter() - t) / 1e9)\n")],
        capture_output=True, text=True, env=env)
    peak_gflops = float(peak.stdout.strip()) if peak.returncode == 0 else float("nan")
    print(f"fp32 GEMM peak (torch.mm 8192³, TF32 off): {peak_gflops:.0f} GFLOP/s")

    # ---- 1. throughput ------------------------------------------------------------------
    print("\n== throughput: images/s over epochs 2..%d of one process each" % a.epochs)
    runners = ["pytorch", "pytorch+same", "greenlab-torch"]
    rows = []
    for r in range(1, a.rounds + 1):
        for conv, linear in [(2, 3), (4, 7)]:
            name = f"SimpleCNN({conv},{linear})"
            shift = (r - 1) % len(runners)
            for runner in runners[shift:] + runners[:shift]:
                run_env = dict(env)
                if runner == "greenlab-torch":
                    out = os.path.join(work, f"tp-{conv}-{linear}-{r}")
                    stdout, err, code, rss = run_measured(
                        greenlab_cmd(a, conv, linear, a.epochs, out), run_env, work)
                    if code != 0:
                        sys.exit(f"greenlab failed ({code}): {err[-800:]}")
                    result = json.load(open(os.path.join(out, "result.json")))
                    ips, flops = greenlab_rate(result), result["forward_flops"]
                else:
                    same = runner == "pytorch+same"
                    if same:
                        run_env.update(HEAP)
                    stdout, err, code, rss = run_measured(
                        reference_cmd(a, conv, linear, a.epochs, same), run_env, work)
                    if code != 0:
                        sys.exit(f"{runner} failed ({code}): {err[-800:]}")
                    ips, flops = reference_rate(json.loads(stdout.strip().splitlines()[-1])), None
                rows.append((r, name, runner, ips, rss, flops))
                print(f"  round {r} {name:<16} {runner:<15} {ips:>10.0f} images/s  "
                      f"host RSS {rss:.0f} MB", flush=True)
    print()
    for conv, linear in [(2, 3), (4, 7)]:
        name = f"SimpleCNN({conv},{linear})"
        by = {ru: [x for x in rows if x[1] == name and x[2] == ru] for ru in runners}
        med = {ru: statistics.median(x[3] for x in xs) for ru, xs in by.items()}
        faster = max(["pytorch", "pytorch+same"], key=lambda ru: med[ru])
        flops = next(x[5] for x in rows if x[1] == name and x[5])
        for ru in runners:
            gflops = flops * 3 * med[ru] / 1e9
            print(f"  {name:<16} {ru:<15} median {med[ru]:>9.0f} images/s "
                  f"{fmt_range([x[3] for x in by[ru]], 0)}  {gflops:.0f} GFLOP/s "
                  f"({100 * gflops / peak_gflops:.2f} % of the fp32 peak)")
        ratios = [g[3] / next(p[3] for p in by[faster] if p[0] == g[0]) for g in by["greenlab-torch"]]
        print(f"  {name:<16} greenlab / {faster}: {statistics.median(ratios):.2f}× "
              f"{fmt_range(ratios)} (goal ≥ 1.5×)\n")

    # ---- 2. energy ----------------------------------------------------------------------
    print("== energy: NVML counter vs integrated power over the same epochs, SimpleCNN(4,7)")
    nvml = Nvml(0)
    print(f"  instantaneous power field: {'available' if nvml.has_instant else 'not available'}")
    for runner in ["greenlab-torch", "pytorch"]:
        sampler = Sampler(nvml)
        sampler.start()
        time.sleep(0.5)
        windows, images_per_epoch, own = [], [], []
        if runner == "greenlab-torch":
            out = os.path.join(work, "energy")
            proc = subprocess.Popen(greenlab_cmd(a, 4, 7, a.energy_epochs, out, meter="nvml"),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                    env=env)
            line_times = []
            for line in proc.stderr:
                if line.startswith("epoch "):
                    line_times.append(time.time())
            code = proc.wait()
            if code != 0:
                sys.exit(f"greenlab (energy) failed ({code})")
            result = json.load(open(os.path.join(out, "result.json")))
            for e, t_line in zip(result["epochs"], line_times):
                evaluation = (e.get("evaluation") or {}).get("duration", 0.0)
                t1 = t_line - evaluation
                windows.append((t1 - e["duration"], t1))
                images_per_epoch.append(e["examples"])
                own.append((e["energy"]["total"], e["energy"]["domains"]))
        else:
            stdout = subprocess.run(reference_cmd(a, 4, 7, a.energy_epochs, False),
                                    capture_output=True, text=True, env=env).stdout
            result = json.loads(stdout.strip().splitlines()[-1])
            windows = [tuple(w) for w in result["epoch_unix_times"]]
            per = result["images"] // max(len(windows), 1)
            images_per_epoch = [per] * len(windows)
        time.sleep(0.5)
        sampler.stop()
        print(f"  {runner}:")
        totals = {"counter_j": 0.0, "power_j": 0.0, "instant_j": 0.0, "images": 0}
        for k, ((t0, t1), n) in enumerate(zip(windows, images_per_epoch)):
            w = sampler.window(t0, t1)
            if w is None:
                print(f"    epoch {k + 1}: too short for the sampler")
                continue
            if k > 0:  # the first epoch warms up
                totals["counter_j"] += w["counter_j"]
                totals["power_j"] += w["power_j"]
                totals["instant_j"] += w["instant_j"] or 0.0
                totals["images"] += n
            extra = f", greenlab's own reading {own[k][0]:.2f} J" if own else ""
            inst = f", instantaneous power {w['instant_j']:.2f} J" if w["instant_j"] is not None else ""
            print(f"    epoch {k + 1}: {w['seconds']:.3f} s, counter {w['counter_j']:.2f} J, "
                  f"power (1 s average) {w['power_j']:.2f} J{inst}{extra}; "
                  f"{1000 * w['counter_j'] / n:.3f} J per 1,000 images")
        if totals["images"]:
            c, p = totals["counter_j"], totals["power_j"]
            print(f"    epochs 2..: counter {c:.2f} J, integrated power {p:.2f} J "
                  f"({100 * (p - c) / c:+.1f} %), {1000 * c / totals['images']:.3f} J per 1,000 "
                  f"training images (counter)")


if __name__ == "__main__":
    main()
