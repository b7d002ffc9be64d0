#!/usr/bin/env bash
# Every GPU check of issue 14 in one run, on a machine with one NVIDIA GPU, its driver, CUDA
# and PyTorch 2.11 — no Rust needed there.
#
#   bench/gpu_check.sh --prepare      # here, with Rust: build and stage what the GPU machine needs
#   bench/gpu_check.sh [--rounds 2]   # there: the checks (about 5 minutes on an H100)
#
# --prepare builds `greenlab` with the libtorch engine and CUDA (`--features torch-cuda`,
# against the full PyTorch wheel of scripts/setup-libtorch.sh --full), strips it, and copies it
# with Fashion-MNIST into target/gpu-carry/ (about 60 MB: carry that folder to the GPU
# machine, e.g. as the `carry` path of a device run). Without --prepare the script runs
# bench/gpu_check.py: greenlab's torch engine against PyTorch eager on SimpleCNN(2,3) and (4,7)
# with the data resident on the GPU, then the NVML energy counter against integrated power
# for the same epochs, and joules per 1,000 training images. The binary loads the GPU
# machine's libtorch (its PyTorch's torch/lib), which must be the same release (2.11) that
# tch 0.24 was built against. Variables: PYTHON (default python3), GREENLAB_BIN, DATA_DIR.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
carry="$repo/target/gpu-carry"
prepare=0
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --prepare) prepare=1; shift ;;
        --rounds|--epochs|--energy-epochs)
            [[ $# -ge 2 ]] || { echo "gpu_check: $1 needs a value" >&2; exit 2; }
            args+=("$1" "$2"); shift 2 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [[ $prepare == 1 ]]; then
    cd "$repo"
    venv="${GREENLAB_VENV:-$repo/.venv}"
    # shellcheck source=/dev/null
    GREENLAB_VENV="$venv" source scripts/setup-libtorch.sh --full >&2
    cargo build --release -p greenlab-cli --features torch-cuda >&2
    mkdir -p "$carry/fashion-mnist"
    strip -o "$carry/greenlab" "${CARGO_TARGET_DIR:-$repo/target}/release/greenlab"
    cp /usr/share/datasets/fashion-mnist/*.gz "$carry/fashion-mnist/"
    du -sh "$carry"
    echo "gpu_check: carry target/gpu-carry to the GPU machine and run bench/gpu_check.sh there"
    exit 0
fi

python="${PYTHON:-python3}"
bin="${GREENLAB_BIN:-$carry/greenlab}"
data="${DATA_DIR:-$carry/fashion-mnist}"
[[ -x "$bin" ]] || { echo "gpu_check: no greenlab binary at $bin (run --prepare where Rust is)" >&2; exit 2; }
[[ -d "$data" ]] || data=/usr/share/datasets/fashion-mnist
nvidia-smi -L || { echo "gpu_check: nvidia-smi failed: no GPU or driver here" >&2; exit 2; }
torch_info="$("$python" -c 'import os, torch; print(torch.__version__, os.path.join(os.path.dirname(torch.__file__), "lib"), torch.cuda.is_available())')" \
    || { echo "gpu_check: $python cannot import torch" >&2; exit 2; }
read -r torch_version torch_lib cuda_ok <<<"$torch_info"
echo "gpu_check: PyTorch $torch_version, libtorch in $torch_lib, CUDA available: $cuda_ok"
case "$torch_version" in
    2.11.*) ;;
    *) echo "gpu_check: greenlab's torch engine needs libtorch 2.11 (tch 0.24); this machine has $torch_version" >&2; exit 2 ;;
esac
[[ "$cuda_ok" == True ]] || { echo "gpu_check: PyTorch sees no CUDA device" >&2; exit 2; }
# The binary's rpath points at the build machine's venv; use this machine's libtorch.
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$bin" --version
exec "$python" "$repo/bench/gpu_check.py" --repo "$repo" --greenlab "$bin" --python "$python" \
    --data-dir "$data" "${args[@]}"
