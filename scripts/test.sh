#!/usr/bin/env bash
# The whole test suite on PostgreSQL, with a real Redis, the lab's libvirt hosts and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
source scripts/services.sh postgres

export DATABASE_URL="$VMOTION_PG_URL/${TEST_DATABASE_NAME:-vmotion}"
export REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
export SECRET_KEY="${SECRET_KEY:-test-only-secret-key}"
export DEBUG=0
export HTTPS=0
# The test lab is its own: another directory and network namespace than the demo's.
export VMOTION_LAB_DIR="${VMOTION_TEST_LAB_DIR:-/var/lib/vmotion-lab-test}"
export VMOTION_LAB_NETNS="${VMOTION_TEST_LAB_NETNS:-vmotion-test}"
# The lab's hosts are libvirt daemons on this machine, reached over unix sockets in its
# directory: a lab install (docs/operations/hosts.md, "Which host URIs are accepted").
export LIBVIRT_LOCAL_INSTALL=1

exec .venv/bin/pytest "$@"
