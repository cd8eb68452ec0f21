#!/usr/bin/env bash
# The whole GPU check in one command, within 8 minutes (scripts/gpu_check.py says what it runs):
#
#   bash scripts/gpu_check.sh [OUTPUT] [--deadline SECONDS]      # default OUTPUT: runs/gpu_check
#
# On a machine that cannot fetch packages, wheels of what it lacks (kornia, kornia_rs and av on this
# project's GPU machines) laid in .whl/ beforehand are installed beside it first (docs/installation.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/vid2vid-site .whl/*.whl
  export PYTHONPATH=/tmp/vid2vid-site${PYTHONPATH:+:$PYTHONPATH}
fi
exec python scripts/gpu_check.py "$@"
