#!/usr/bin/env bash
# Runs the product on this machine: the lab (three libvirt hosts with guests), Redis if none
# answers, the web server on 127.0.0.1:8000, an RQ worker and the scheduler. Ctrl-C stops
# everything it started.
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
export SECRET_KEY='$SECRET_KEY' DEBUG=1 HTTPS=0 DATABASE_URL='$DATABASE_URL' REDIS_URL='$REDIS_URL' PROMETHEUS_MULTIPROC_DIR='$PROMETHEUS_MULTIPROC_DIR' LIBVIRT_LOCAL_INSTALL=1
EOT

"${manage[@]}" migrate --no-input -v 0

pids=()
stop_all() {
    trap - INT TERM EXIT
    echo
    echo "demo: stopping the web server, worker and scheduler"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
    echo "demo: stopping the lab"
    "${manage[@]}" lab down || true
}
trap stop_all INT TERM EXIT

"${manage[@]}" lab up --hosts "${LAB_HOSTS:-3}" --guests "${LAB_GUESTS:-4}"

password_file="$state/admin-password"
[ -f "$password_file" ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(12))" > "$password_file"
"${manage[@]}" ensure_admin --username admin --password-file "$password_file"

# One worker per concurrent migration: a worker follows its migration to the end.
for i in $(seq "${VMOTION_WORKERS:-4}"); do
    .venv/bin/python manage.py rqworker high default low --worker-class migrations_app.engine.worker.VmotionWorker >"$state/worker$i.log" 2>&1 &
    pids+=($!)
done
# Inventory syncs have workers of their own, so they never wait behind migrations; one
# reads the lab's three hosts many times over within the interval (docs/operations/compose.md:
# "Size the inventory workers").
for i in $(seq "${VMOTION_INVENTORY_WORKERS:-1}"); do
    .venv/bin/python manage.py rqworker inventory --worker-class inventory.worker.InventoryWorker >"$state/inventory-worker$i.log" 2>&1 &
    pids+=($!)
done
.venv/bin/python manage.py scheduler >"$state/scheduler.log" 2>&1 &
pids+=($!)
.venv/bin/python manage.py runserver 127.0.0.1:8000 --noreload >"$state/web.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
    curl -fs -o /dev/null http://127.0.0.1:8000/login/ && break
    sleep 0.2
done
cat <<EOT

vmotion is running: http://127.0.0.1:8000/
  sign in as  admin  /  $(cat "$password_file")
  logs in $state/ (web.log, worker*.log, scheduler.log)
  metrics:    http://127.0.0.1:8000/metrics (docs/reference/metrics.md)
  in another shell:  source $state/env
                     .venv/bin/python manage.py vmotion migrate lab-vm1 --to lab-host2 --wait --json
                     .venv/bin/python manage.py lab status
Press Ctrl-C to stop the web server, worker, scheduler and lab.
EOT
wait -n "${pids[@]}" || true
echo "demo: a process exited; see $state/*.log"
