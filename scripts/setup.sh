#!/usr/bin/env bash
# Idempotent setup: virtual env in .venv with the pinned packages, and (as root) Debian's
# Fashion-MNIST files; with --test also Slurm + munge, and slurmdbd + MariaDB for its accounting, for the
# real one-node cluster test (.ci/slurm-up.sh, tests/test_slurm.py), and Chromium for the report
# rendering test.
# A second run only checks stamps and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi

stamp=.venv/.lmht-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "[setup] installing lmht and its pinned dependencies into .venv (first run: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi

apt_packages=()
[[ -d /usr/share/datasets/fashion-mnist ]] || apt_packages+=(dataset-fashion-mnist)
if (( want_test )); then
  command -v slurmctld >/dev/null 2>&1 || apt_packages+=(slurm-wlm)
  command -v munged >/dev/null 2>&1 || apt_packages+=(munge)
  command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)  # tests/test_report.py renders the report
  command -v slurmdbd >/dev/null 2>&1 || apt_packages+=(slurmdbd)
  command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 || apt_packages+=(mariadb-server)
fi
if (( ${#apt_packages[@]} )); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] apt-get install ${apt_packages[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
  else
    echo "[setup] not root or no apt-get: skipping Debian packages ${apt_packages[*]}" >&2
    echo "        (Fashion-MNIST then downloads through torchvision; the Slurm test skips)" >&2
  fi
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch, lmht; print("torch", torch.__version__, "| lmht", lmht.__version__)')"
