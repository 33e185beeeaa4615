#!/usr/bin/env bash
# The whole test suite on PostgreSQL, with a real Redis, the lab's libvirt hosts and Chromium.
# With no arguments (`make test`): the tests that need no lab on every core (pytest-xdist,
# each worker with its own test database and Redis database), then the lab and browser tests
# in one process, as there is one lab. With arguments: exactly that pytest run, e.g.
# `bash scripts/test.sh tests/unit/migrations_app/web/test_wizard.py` or `bash scripts/test.sh -n auto tests/unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
source scripts/services.sh postgres

export DATABASE_URL="$VMOTION_PG_URL/${TEST_DATABASE_NAME:-vmotion}"
# A run on several workers (-n) takes this database index and the next ones, one per worker.
export REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/8}"
export SECRET_KEY="${SECRET_KEY:-test-only-secret-key}"
export DEBUG=0
export HTTPS=0
# The test lab is its own: another directory and network namespace than the demo's.
export VMOTION_LAB_DIR="${VMOTION_TEST_LAB_DIR:-/var/lib/vmotion-lab-test}"
export VMOTION_LAB_NETNS="${VMOTION_TEST_LAB_NETNS:-vmotion-test}"
# The lab's hosts are libvirt daemons on this machine, reached over unix sockets in its
# directory: a lab install (docs/operations/hosts.md, "Which host URIs are accepted").
export LIBVIRT_LOCAL_INSTALL=1

if [ "$#" -gt 0 ]; then
    exec .venv/bin/pytest "$@"
fi

# At most 8 workers: Redis databases 8 to 15 by default.
status=0
.venv/bin/pytest -n "${TEST_WORKERS:-auto}" --maxprocesses 8 tests --ignore=tests/lab --ignore=tests/browser || status=$?
.venv/bin/pytest tests/lab tests/browser || status=$?
exit "$status"
