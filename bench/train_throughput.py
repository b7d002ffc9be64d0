#!/usr/bin/env python3
"""The measuring half of bench/train_throughput.sh (which builds the binaries and calls this).

Runs greenlab's engines and PyTorch (bench/pytorch_reference.py) on the same networks in
interleaved rounds, each run its own process, and prints:

- the machine and the software: CPU model, instruction sets, cores, thread settings, the
  vector level each side uses, library versions, the load;
- per round, images/s of every run;
- per network and runner, the median over rounds (and range) of images/s, the achieved
  GFLOP/s (the model's forward FLOPs per image × 3 for forward + backward × images/s) as a
  fraction of a measured GEMM peak of this machine, the peak resident memory, and greenlab's
  ratio to PyTorch: against each PyTorch variant and, as the headline, against the faster
  one (by median images/s).

PyTorch runs twice per round: as a user runs it ("pytorch") and with the glibc heap settings
greenlab sets for itself at start-up ("pytorch+heap", crates/cli/src/heap.rs). Both get what
greenlab gets: the same thread count, the data in memory, the same batches and the same work
per step (see bench/pytorch_reference.py). Each round's ratio is taken against the same
round's PyTorch run, so slow phases of a shared machine hit both sides.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile

# greenlab's heap settings (crates/cli/src/heap.rs: mallopt at start-up).
HEAP = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
# What a machine without AVX-512 runs, on both sides: greenlab's kernels and matrix products
# (GREENLAB_SIMD), ATen's dispatch, oneDNN's JIT kernels and MKL's.
AVX2_ONLY = {
    "GREENLAB_SIMD": "avx2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
FLAGS_SHOWN = [
    "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
]


def run_measured(cmd, env, work):
    """Runs cmd; returns (stdout, stderr, exit code, peak resident memory in MB)."""
    out_path = os.path.join(work, "stdout")
    err_path = os.path.join(work, "stderr")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path) as f:
        stdout = f.read()
    with open(err_path) as f:
        stderr = f.read()
    # ru_maxrss is in KiB on Linux.
    return stdout, stderr, proc.returncode, usage.ru_maxrss / 1024.0


def cpu_info():
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def lscpu_field(name):
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return None
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def cargo_lock_versions(repo, names):
    versions = {}
    try:
        text = open(os.path.join(repo, "Cargo.lock")).read()
    except OSError:
        return versions
    for block in text.split("[[package]]"):
        m = re.search(r'name = "([^"]+)"\s*\nversion = "([^"]+)"', block)
        if m and m.group(1) in names:
            versions.setdefault(m.group(1), m.group(2))
    return versions


def git_describe(repo):
    def git(*args):
        return subprocess.run(
            ["git", "-C", repo, *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return commit + (" with uncommitted changes" if dirty else "")


def torch_probe(python, env, threads):
    code = (
        "import json, re, torch\n"
        f"torch.set_num_threads({threads})\n"
        "cfg = torch.__config__.show()\n"
        "def find(p):\n"
        "    m = re.search(p, cfg)\n"
        "    return m.group(1) if m else None\n"
        "print(json.dumps({'torch': torch.__version__,\n"
        "  'capability': torch.backends.cpu.get_cpu_capability(),\n"
        "  'threads': torch.get_num_threads(), 'interop': torch.get_num_interop_threads(),\n"
        "  'onednn': find(r'MKL-DNN (v[0-9.]+)'), 'mkl': find(r'Math Kernel Library Version ([0-9.]+)'),\n"
        "  'openmp': find(r'OpenMP ([0-9]+)')}))\n"
    )
    res = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, check=False)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": res.stderr.strip()[-300:]}


def command_version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "unknown"


def fmt_range(values, digits=2):
    return f"[{min(values):.{digits}f}, {max(values):.{digits}f}]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--greenlab", required=True, help="the greenlab binary")
    ap.add_argument("--python", required=True, help="the venv's python with torch")
    ap.add_argument("--engines", default="burn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit-train", type=int)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--isa", choices=["native", "avx2"], default="native")
    ap.add_argument("--networks", default="2,3 4,7")
    ap.add_argument("--batch-size", type=int, default=512)
    a = ap.parse_args()

    base_env = {k: v for k, v in os.environ.items() if k not in HEAP and k not in AVX2_ONLY}
    if a.isa == "avx2":
        base_env.update(AVX2_ONLY)
    networks = [tuple(int(v) for v in n.split(",")) for n in a.networks.split()]
    engines = [e for e in a.engines.split(",") if e]
    work = tempfile.mkdtemp(prefix="train-throughput-")

    # --- header ---------------------------------------------------------------------------
    model, flags = cpu_info()
    cores = lscpu_field("Core(s) per socket")
    sockets = lscpu_field("Socket(s)")
    hypervisor = lscpu_field("Hypervisor vendor")
    shown = [f for f in FLAGS_SHOWN if f in flags]
    probe_default = torch_probe(a.python, base_env, a.threads)
    versions = cargo_lock_versions(a.repo, {"burn", "burn-flex", "gemm", "tch", "torch-sys"})
    peak_env = dict(base_env)
    peak_runs = []

    def gemm_peak():
        out, err, code, _ = run_measured(
            [a.greenlab, "gemm-peak", "--size", "2048", "--repeats", "4"], peak_env, work)
        if code != 0:
            sys.exit(f"greenlab gemm-peak failed: {err.strip()}")
        peak_runs.append(json.loads(out.strip().splitlines()[-1]))

    load_start = load_average()
    gemm_peak()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"train_throughput — {now}, greenlab {git_describe(a.repo)}")
    print(f"machine    {model}; {os.cpu_count()} logical CPUs"
          + (f", {int(cores) * int(sockets or 1)} cores" if cores else "")
          + (f"; {hypervisor} guest" if hypervisor else ""))
    print(f"ISA        {' '.join(shown) or 'none of ' + ' '.join(FLAGS_SHOWN[:4])}")
    simd_note = "forced to AVX2 (--isa avx2: " + " ".join(f"{k}={v}" for k, v in AVX2_ONLY.items()) + ")" \
        if a.isa == "avx2" else "widest available"
    print(f"vectors    {simd_note}; greenlab's kernels: {peak_runs[0]['simd']}, "
          f"PyTorch's ATen: {probe_default.get('capability')}")
    print(f"threads    {a.threads} per run: greenlab --threads {a.threads}; PyTorch "
          f"torch.set_num_threads({a.threads}) → {probe_default.get('threads')} intra-op, "
          f"{probe_default.get('interop')} inter-op (OpenMP {probe_default.get('openmp')}); "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"versions   {command_version(['rustc', '--version'])}; "
          + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
          + f"; torch {probe_default.get('torch')} (MKL {probe_default.get('mkl')}, "
          f"oneDNN {probe_default.get('onednn')}); Python {platform.python_version()}; "
          f"glibc {os.confstr('CS_GNU_LIBC_VERSION') if hasattr(os, 'confstr') else '?'}")
    print("PyTorch    pytorch: as a user runs it; pytorch+heap: "
          + " ".join(f"{k}={v}" for k, v in HEAP.items()) + " (greenlab's own heap settings)")
    images = f"first {a.limit_train} images" if a.limit_train else "60000 images"
    print(f"workload   one epoch of Fashion-MNIST ({images}), batch {a.batch_size}, data in memory, "
          f"evaluation excluded; {a.rounds} interleaved round(s), each run its own process")
    print()

    # --- rounds ---------------------------------------------------------------------------
    runners = ["pytorch", "pytorch+heap"] + engines
    rows = []  # (round, network, runner, images/s, rss MB, forward flops per image or None)
    print(f"{'round':<6} {'network':<16} {'runner':<13} {'images/s':>10} {'peak RSS':>10}")
    for r in range(1, a.rounds + 1):
        for conv, linear in networks:
            name = f"SimpleCNN({conv},{linear})"
            # Rotate the order each round so no runner always goes first.
            shift = (r - 1) % len(runners)
            for runner in runners[shift:] + runners[:shift]:
                env = dict(base_env)
                if runner.startswith("pytorch"):
                    if runner == "pytorch+heap":
                        env.update(HEAP)
                    cmd = [a.python, os.path.join(a.repo, "bench/pytorch_reference.py"),
                           "--conv", str(conv), "--linear", str(linear),
                           "--batch-size", str(a.batch_size), "--threads", str(a.threads),
                           "--data-dir", a.data_dir]
                    if a.limit_train:
                        cmd += ["--limit-train", str(a.limit_train)]
                    out, err, code, rss = run_measured(cmd, env, work)
                    if code != 0:
                        sys.exit(f"{runner} failed ({code}): {err.strip()[-500:]}")
                    ips, flops = json.loads(out.strip().splitlines()[-1])["images_per_second"], None
                else:
                    run_dir = os.path.join(work, f"{runner}-{conv}-{linear}-{r}")
                    cmd = [a.greenlab, "train", "--model", "simple-cnn", "--conv", str(conv),
                           "--linear", str(linear), "--epochs", "1", "--batch-size",
                           str(a.batch_size), "--threads", str(a.threads), "--engine", runner,
                           "--data-dir", a.data_dir, "--limit-test", "512", "--meter",
                           "estimate", "--out", run_dir]
                    if a.limit_train:
                        cmd += ["--limit-train", str(a.limit_train)]
                    out, err, code, rss = run_measured(cmd, env, work)
                    if code != 0:
                        sys.exit(f"greenlab {runner} failed ({code}): {err.strip()[-500:]}")
                    result = json.load(open(os.path.join(run_dir, "result.json")))
                    ips = result["epochs"][0]["images_per_second"]
                    flops = result["forward_flops"]
                rows.append((r, name, runner, ips, rss, flops))
                print(f"{r:<6} {name:<16} {runner:<13} {ips:>10.0f} {rss:>7.0f} MB", flush=True)
        gemm_peak()
    load_end = load_average()

    # --- summary --------------------------------------------------------------------------
    peaks = [p["gflops"] for p in peak_runs]
    peak = statistics.median(peaks)
    print()
    print(f"GEMM peak  {peak:.1f} GFLOP/s median of {len(peaks)} runs {fmt_range(peaks, 1)} "
          f"({peak_runs[0]['size']}³ f32 through greenlab's gemm at {peak_runs[0]['simd']}, "
          f"{peak_runs[0]['threads']} threads: all cores)")
    print(f"load       1-min load average {load_start:.2f} at the start, {load_end:.2f} at the end")
    print()
    print("median over rounds; ratios per round against the same round's PyTorch run")
    header = (f"{'network':<16} {'runner':<13} {'images/s':>9} {'range':>16} {'GFLOP/s':>8} "
              f"{'of peak':>8} {'peak RSS':>9} {'vs pytorch':>11} {'vs +heap':>9} "
              f"{'vs faster':>10} {'range':>14}")
    print(header)
    headlines = []
    for conv, linear in networks:
        name = f"SimpleCNN({conv},{linear})"
        by_runner = {ru: [row for row in rows if row[1] == name and row[2] == ru] for ru in runners}
        flops = next((row[5] for row in rows if row[1] == name and row[5]), None)
        medians = {ru: statistics.median([row[3] for row in rs]) for ru, rs in by_runner.items()}
        faster = max(["pytorch", "pytorch+heap"], key=lambda ru: medians[ru])
        for ru in runners:
            rs = by_runner[ru]
            ips = [row[3] for row in rs]
            med = medians[ru]
            gflops = flops * 3 * med / 1e9 if flops else float("nan")
            rss = statistics.median([row[4] for row in rs])
            line = (f"{name:<16} {ru:<13} {med:>9.0f} {fmt_range(ips, 0):>16} {gflops:>8.2f} "
                    f"{100 * gflops / peak:>7.2f}% {rss:>6.0f} MB")
            if not ru.startswith("pytorch"):
                ratio = {}
                for ref in ["pytorch", "pytorch+heap"]:
                    ratio[ref] = [row[3] / next(x[3] for x in by_runner[ref] if x[0] == row[0]) for row in rs]
                line += (f" {statistics.median(ratio['pytorch']):>10.2f}× "
                         f"{statistics.median(ratio['pytorch+heap']):>8.2f}× "
                         f"{statistics.median(ratio[faster]):>9.2f}× {fmt_range(ratio[faster]):>14}")
                headlines.append((name, ru, statistics.median(ratio[faster]), ratio[faster], faster,
                                  rss, statistics.median([row[4] for row in by_runner[faster]])))
            print(line)
    print()
    print("headline: greenlab against the faster PyTorch variant (median ratio, range over rounds)")
    for name, ru, med, ratios, faster, rss, ref_rss in headlines:
        print(f"  {name:<16} {ru:<6} {med:.2f}× {fmt_range(ratios)} vs {faster}; "
              f"peak memory {rss:.0f} MB vs {ref_rss:.0f} MB")


if __name__ == "__main__":
    main()
