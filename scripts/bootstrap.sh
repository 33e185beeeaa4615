#!/usr/bin/env bash
# Everything vmotion needs on a fresh Debian/Ubuntu machine: system packages (apt, as root)
# and the Python packages in .venv. Quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-packages.sh

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=.venv/.vmotion-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test,demo]'
    touch "$stamp"
fi
