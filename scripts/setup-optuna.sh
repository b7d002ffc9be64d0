#!/usr/bin/env bash
# Installs Optuna (PyPI optuna==5.0.0, about 60 MB with numpy, SQLAlchemy, alembic) into
# .venv-optuna at the repository root, for the test that opens `greenlab study export --format
# optuna` files with the real Optuna, and exports GREENLAB_OPTUNA_PYTHON (the venv's python).
#
#   scripts/setup-optuna.sh              # install (idempotent: nothing is downloaded twice)
#   source scripts/setup-optuna.sh       # same, and export GREENLAB_OPTUNA_PYTHON into this shell
#
# The venv's location can be changed with GREENLAB_OPTUNA_VENV.

_greenlab_setup_optuna() {
    local version="5.0.0"
    local repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
    local venv="${GREENLAB_OPTUNA_VENV:-$repo/.venv-optuna}"
    local python="$venv/bin/python"
    if [[ ! -x "$python" ]]; then
        echo "setup-optuna: creating $venv" >&2
        python3 -m venv "$venv" || {
            echo "setup-optuna: python3 -m venv failed; install python3-venv (apt-get install python3-venv)" >&2
            return 1
        }
    fi
    if "$python" -c "import optuna, sys; sys.exit(optuna.__version__ != '$version')" >/dev/null 2>&1; then
        echo "setup-optuna: optuna $version already installed in $venv" >&2
    else
        echo "setup-optuna: installing optuna==$version into $venv" >&2
        "$python" -m pip install --quiet --disable-pip-version-check "optuna==$version" >&2 || {
            echo "setup-optuna: pip failed; check the network access to PyPI and the free disk space" >&2
            return 1
        }
    fi
    export GREENLAB_OPTUNA_PYTHON="$python"
    echo "setup-optuna: GREENLAB_OPTUNA_PYTHON=$python" >&2
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    _greenlab_setup_optuna "$@"
else
    _greenlab_setup_optuna "$@"
fi
