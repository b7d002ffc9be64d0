#!/usr/bin/env bash
# Installs the system packages greenlab's main job and tests need (Debian/Ubuntu, as root or
# with sudo): the real Fashion-MNIST, PostgreSQL (tests of the multi-machine storage),
# Chromium (headless test of the HTML report) and python3-venv (libtorch from the PyPI wheel).
set -euo pipefail
need=()
[[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] || need+=(dataset-fashion-mnist)
if [[ "${1:-}" != "--data-only" ]]; then
  [[ -x /usr/lib/postgresql/15/bin/initdb ]] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
fi
if ((${#need[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "installing: ${need[*]}" >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
