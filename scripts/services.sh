#!/usr/bin/env bash
# Starts Redis (and PostgreSQL with `postgres`) when none answers; prints the URLs to use.
# Usage: source scripts/services.sh [postgres]
set -euo pipefail

start_redis() {
    if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        return
    fi
    echo "services: starting Redis on 127.0.0.1:6379" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/vmotion.log
    for _ in $(seq 50); do
        redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "services: Redis did not start; see /var/log/redis/vmotion.log" >&2
    return 1
}

start_postgres() {
    if ! pg_isready -h 127.0.0.1 -q 2>/dev/null; then
        echo "services: starting PostgreSQL" >&2
        local version
        version=$(ls /etc/postgresql | sort -n | tail -1)
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        for _ in $(seq 100); do
            pg_isready -h 127.0.0.1 -q && break
            sleep 0.2
        done
    fi
    # Trust on 127.0.0.1 where the machine allows it; otherwise give postgres a password.
    if psql -h 127.0.0.1 -U postgres -w -c 'select 1' >/dev/null 2>&1; then
        export VMOTION_PG_URL="postgres://postgres@127.0.0.1:5432"
    else
        su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'vmotion'\"" >/dev/null
        export VMOTION_PG_URL="postgres://postgres:vmotion@127.0.0.1:5432"
    fi
}

start_redis
if [ "${1:-}" = postgres ]; then
    start_postgres
fi
