#!/usr/bin/env bash
# Runs the product on this machine: the lab (three libvirt hosts with guests), Redis if none
# answers, and under supervisord (scripts/demo-supervisord.conf) the web server on
# 127.0.0.1:8000, the RQ workers and the scheduler: one of them that exits is started again.
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
source scripts/services.sh

state=.demo
mkdir -p "$state"
[ -f "$state/secret-key" ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))" > "$state/secret-key"
export SECRET_KEY="$(cat "$state/secret-key")"
export DEBUG=1
export HTTPS=0
export DATABASE_URL="${DATABASE_URL:-sqlite:///$PWD/$state/vmotion.sqlite3}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
# The lab's hosts are libvirt daemons on this machine, reached over unix sockets in its
# directory: a lab install (docs/operations/hosts.md, "Which host URIs are accepted").
export LIBVIRT_LOCAL_INSTALL=1
# The metric files of every process below, for one scrape of /metrics to add up: emptied
# here, when the whole demo starts, and never by one process.
export PROMETHEUS_MULTIPROC_DIR="$PWD/$state/metrics"
rm -rf "$PROMETHEUS_MULTIPROC_DIR"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
manage=(.venv/bin/python manage.py)
# The same settings for commands typed in another shell: `source .demo/env`.
cat > "$state/env" <<EOT
export SECRET_KEY='$SECRET_KEY' DEBUG=1 HTTPS=0 DATABASE_URL='$DATABASE_URL' REDIS_URL='$REDIS_URL' PROMETHEUS_MULTIPROC_DIR='$PROMETHEUS_MULTIPROC_DIR' LIBVIRT_LOCAL_INSTALL=1 VMOTION_DEMO_STATE='$PWD/$state'
EOT

"${manage[@]}" migrate --no-input -v 0

supervisor_pid=
stop_all() {
    trap - INT TERM EXIT
    echo
    if [ -n "$supervisor_pid" ]; then
        echo "demo: stopping the web server, workers and scheduler"
        # supervisord stops each of its processes and waits for them before it exits.
        kill "$supervisor_pid" 2>/dev/null || true
        wait "$supervisor_pid" 2>/dev/null || true
    fi
    echo "demo: stopping the lab"
    "${manage[@]}" lab down || true
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

"${manage[@]}" lab up --hosts "${LAB_HOSTS:-3}" --guests "${LAB_GUESTS:-4}"

password_file="$state/admin-password"
[ -f "$password_file" ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(12))" > "$password_file"
"${manage[@]}" ensure_admin --username admin --password-file "$password_file"

# The workers (one per concurrent migration), the inventory workers, the scheduler and the
# web server, each started again by supervisord if it exits (logged in supervisord.log).
export VMOTION_DEMO_STATE="$PWD/$state" VMOTION_DEMO_PORT="${VMOTION_DEMO_PORT:-8000}"
export VMOTION_WORKERS="${VMOTION_WORKERS:-4}" VMOTION_INVENTORY_WORKERS="${VMOTION_INVENTORY_WORKERS:-1}"
.venv/bin/supervisord -c scripts/demo-supervisord.conf &
supervisor_pid=$!

for _ in $(seq 100); do
    curl -fs -o /dev/null "http://127.0.0.1:$VMOTION_DEMO_PORT/login/" && break
    sleep 0.2
done
cat <<EOT

vmotion is running: http://127.0.0.1:$VMOTION_DEMO_PORT/
  sign in as  admin  /  $(cat "$password_file")
  logs in $state/ (web.log, worker*.log, scheduler.log; exits and restarts in supervisord.log)
  metrics:    http://127.0.0.1:$VMOTION_DEMO_PORT/metrics (docs/reference/metrics.md)
  in another shell:  source $state/env
                     .venv/bin/python manage.py vmotion migrate lab-vm1 --to lab-host2 --wait --json
                     .venv/bin/python manage.py lab status
                     .venv/bin/supervisorctl -c scripts/demo-supervisord.conf status
Press Ctrl-C to stop the web server, workers, scheduler and lab.
EOT
wait "$supervisor_pid" || true
supervisor_pid=
echo "demo: supervisord exited; see $state/supervisord.log"
