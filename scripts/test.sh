#!/usr/bin/env bash
# The test suite, as CI runs it: installs what the tests need, starts a throwaway PostgreSQL on
# loopback, installs Optuna in a small venv, then runs every crate's tests (the default
# workspace with the Burn engine, and the libtorch engine).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# PostgreSQL for the storage conformance suite (exports GREENLAB_TEST_POSTGRES_URL).
# shellcheck source=/dev/null
source scripts/postgres-test.sh start
trap 'scripts/postgres-test.sh stop || true' EXIT
# Optuna (PyPI optuna==5.0.0 in .venv-optuna) for the test that opens greenlab's Optuna export
# (exports GREENLAB_OPTUNA_PYTHON).
# shellcheck source=/dev/null
source scripts/setup-optuna.sh
cargo test --no-fail-fast  # default members: all crates but greenlab-torch
# The libtorch engine (PyPI wheel torch==2.11.0 in .venv).
# shellcheck source=/dev/null
source scripts/setup-libtorch.sh
cargo test -p greenlab-torch --no-fail-fast
