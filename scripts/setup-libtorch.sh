#!/usr/bin/env bash
# Installs libtorch 2.11 (from PyPI's torch==2.11.0 wheel) into .venv at the repository root,
# for the torch engine (crates/torch, tch 0.24), and sets the variables its build needs.
#
#   scripts/setup-libtorch.sh            # CPU profile: enough to build and run the torch engine
#   scripts/setup-libtorch.sh --full     # + everything `import torch` needs (PyTorch benchmarks)
#   source scripts/setup-libtorch.sh     # same, and exports the variables into this shell
#
# Why two profiles. PyPI's Linux wheel is the CUDA 13 build; `pip install torch==2.11.0` also
# pulls about 3 GB of nvidia-* packages (cuDNN, cuBLAS, NCCL, ...). A CPU-only binary needs none
# of them except two: libtorch_cpu.so itself is linked against libcudart.so.13 and
# libcupti.so.13 (see `readelf -d`), which the small `cuda-toolkit[cudart,cupti]` extras
# provide (about 50 MB). Python's `import torch` needs more (libtorch_python.so loads
# libtorch_cuda.so, cuDNN, ...), so the CPU profile points tch at the wheel's folder with
# LIBTORCH instead of asking Python (LIBTORCH_USE_PYTORCH). `--full` installs the wheel with
# all its dependencies, for the PyTorch reference in bench/.
#
# Idempotent: an installed profile is detected and nothing is downloaded again. The venv's
# location can be changed with GREENLAB_VENV.

_greenlab_setup_libtorch() {
    local torch_version="2.11.0"
    local cuda_pin="13.0.2"
    local repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
    local venv="${GREENLAB_VENV:-$repo/.venv}"
    local profile="cpu"
    local arg
    for arg in "$@"; do
        case "$arg" in
            --full) profile="full" ;;
            --cpu) profile="cpu" ;;
            -h|--help)
                sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
                return 0 ;;
            *)
                echo "setup-libtorch: unknown option $arg (use --full, --cpu or --help)" >&2
                return 2 ;;
        esac
    done

    local start=$SECONDS
    local python="$venv/bin/python"
    if [[ ! -x "$python" ]]; then
        echo "setup-libtorch: creating $venv"
        python3 -m venv "$venv" || {
            echo "setup-libtorch: python3 -m venv failed; install python3-venv (apt-get install python3-venv)" >&2
            return 1
        }
    fi
    local site
    site="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || return 1
    local torch_dir="$site/torch"
    local pip=("$python" -m pip install --quiet --disable-pip-version-check)

    local have_torch=0
    if [[ -d "$site/torch-$torch_version.dist-info" && -f "$torch_dir/lib/libtorch_cpu.so" ]]; then
        have_torch=1
    fi
    # libtorch_cpu.so needs these two CUDA runtime libraries at load time, even on CPU.
    local have_cuda_rt=0
    if [[ -f "$site/nvidia/cu13/lib/libcudart.so.13" && -f "$site/nvidia/cu13/lib/libcupti.so.13" ]]; then
        have_cuda_rt=1
    fi

    if [[ "$profile" == "full" ]]; then
        if "$python" -c 'import torch' >/dev/null 2>&1 && [[ $have_torch == 1 ]]; then
            echo "setup-libtorch: torch $torch_version (full) already installed in $venv"
        else
            echo "setup-libtorch: installing torch==$torch_version with all its dependencies (about 4 GB)"
            "${pip[@]}" "torch==$torch_version" || {
                echo "setup-libtorch: pip failed; check the network access to PyPI and the free disk space" >&2
                return 1
            }
        fi
    else
        if [[ $have_torch == 1 ]]; then
            echo "setup-libtorch: torch $torch_version already installed in $venv"
        else
            echo "setup-libtorch: installing torch==$torch_version without dependencies (530 MB download)"
            "${pip[@]}" --no-deps "torch==$torch_version" || {
                echo "setup-libtorch: pip failed; check the network access to PyPI and the free disk space" >&2
                return 1
            }
        fi
        if [[ $have_cuda_rt == 1 ]]; then
            echo "setup-libtorch: CUDA runtime and CUPTI libraries already installed"
        else
            echo "setup-libtorch: installing cuda-toolkit[cudart,cupti]==$cuda_pin (libcudart, libcupti: about 50 MB);"
            echo "setup-libtorch: pip then warns that torch's other requirements are missing: expected here"
            "${pip[@]}" "cuda-toolkit[cudart,cupti]==$cuda_pin" || {
                echo "setup-libtorch: pip failed; check the network access to PyPI and the free disk space" >&2
                return 1
            }
        fi
    fi

    if [[ ! -f "$torch_dir/lib/libtorch_cpu.so" ]]; then
        echo "setup-libtorch: $torch_dir/lib/libtorch_cpu.so is missing after the install; remove $venv and rerun" >&2
        return 1
    fi

    # tch's build script reads these. LIBTORCH (rather than LIBTORCH_USE_PYTORCH=1) works for
    # both profiles, because it does not need `import torch`.
    export LIBTORCH="$torch_dir"
    export LIBTORCH_CXX11_ABI=1
    unset LIBTORCH_USE_PYTORCH
    export GREENLAB_TORCH_PYTHON="$python"
    echo "setup-libtorch: done in $((SECONDS - start)) s; $venv holds $(du -sh "$venv" 2>/dev/null | cut -f1)"
    echo "setup-libtorch: variables for building the torch engine (exported when sourced):"
    echo "  export LIBTORCH=$LIBTORCH"
    echo "  export LIBTORCH_CXX11_ABI=1"
    echo "  export GREENLAB_TORCH_PYTHON=$python   # the venv's python (PyTorch reference, --full)"
    echo "setup-libtorch: binaries find libtorch through an rpath (no LD_LIBRARY_PATH needed here)"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    _greenlab_setup_libtorch "$@"
else
    _greenlab_setup_libtorch "$@"
fi
