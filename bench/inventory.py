#!/usr/bin/env python3
"""Inventory sync at scale: how long one full round of per-host syncs takes over many hosts.

Each host is a libvirt test-driver node (`test:///<file>`) with its own domains, pool and
network, so every sync does the real work: a libvirt connection, the reads, and the
inventory's reconciliation in PostgreSQL. For each number of inventory workers, the bench
queues one round through the product (`inventory.jobs.enqueue_sync_all`, as the scheduler
does), times it until every job has run, and checks that every host was read.

    .venv/bin/python bench/inventory.py                               # 2,500 hosts x 16 VMs
    .venv/bin/python bench/inventory.py --hosts 500 --workers 1,2 --rounds 3

Uses the PostgreSQL database vmotion_bench_inventory (dropped and created afresh) and Redis
database 11. It stops only the worker processes it started.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # run as a script: `lab` must be the package, not a sibling module

from lab.processes import start_in_session, stop_session  # noqa: E402

PYTHON = ROOT / ".venv" / "bin" / "python"
DATABASE = "vmotion_bench_inventory"
REDIS_URL = "redis://127.0.0.1:6379/11"
INTERVAL_S = 10  # the default INVENTORY_SYNC_INTERVAL
WORKER_OPTIONS = os.environ.get("BENCH_WORKER_OPTIONS", "").split()


def node_xml(host: int, vms: int) -> str:
    domains = "\n".join(
        f"""<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm-{host}-{vm}</name><uuid>{uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{host}-{vm}")}</uuid>
    <memory unit='MiB'>2048</memory><vcpu>2</vcpu><os><type>hvm</type></os>
    <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/srv/nfs1/vm-{host}-{vm}.qcow2'/><target dev='vda' bus='virtio'/></disk>
      <interface type='network'><mac address='52:54:{host // 256:02x}:{host % 256:02x}:00:{vm:02x}'/><source network='prod'/><model type='virtio'/></interface></devices>
    <test:runstate>1</test:runstate></domain>"""
        for vm in range(vms)
    )
    return f"""<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>2</sockets><cores>16</cores><threads>2</threads></cpu>
  <memory>536870912</memory>{domains}
  <network><name>prod</name><bridge name='br-prod'/><forward mode='bridge'/></network>
  <pool type='netfs'><name>nfs1</name><source><host name='filer.example'/><dir path='/export/vms'/><format type='nfs'/></source><target><path>/srv/nfs1</path></target></pool>
</node>"""


def manage(env: dict, *args: str, code: str | None = None) -> str:
    command = [str(PYTHON), "manage.py", *args] + (["-c", code] if code else [])
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def fresh_database(pg_url: str) -> str:
    import psycopg

    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    return f"{pg_url}/{DATABASE}"


def round_time(env: dict) -> tuple[float, int]:
    """Queue one round, wait until every job ran; returns the seconds and the hosts read."""
    from redis import Redis
    from rq import Queue
    from rq.registry import StartedJobRegistry

    queue = Queue("inventory", connection=Redis.from_url(REDIS_URL))
    started = StartedJobRegistry(queue=queue)
    mark = manage(env, "shell", "--no-imports", code="from django.utils import timezone; print(timezone.now().isoformat())")
    manage(env, "shell", "--no-imports", code="from inventory.jobs import enqueue_sync_all; enqueue_sync_all()")
    begin = time.monotonic()
    while queue.count or started.count:
        time.sleep(0.1)
    seconds = time.monotonic() - begin
    read = manage(env, "shell", "--no-imports", code=f"from inventory.models import Host; print(Host.objects.filter(last_sync__gte='{mark}', last_error='').count())")
    return seconds, int(read)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=2500)
    parser.add_argument("--vms-per-host", type=int, default=16, help="40,000 VMs over 2,500 hosts")
    parser.add_argument("--workers", default="1,2,4", help="inventory worker counts to measure")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per worker count, after the round that fills the inventory")
    args = parser.parse_args(argv)
    env = {**os.environ, "DATABASE_URL": fresh_database(os.environ.get("VMOTION_PG_URL", "postgres://postgres@127.0.0.1:5432")),
           "REDIS_URL": REDIS_URL, "SECRET_KEY": "bench-only", "DEBUG": "0", "LOG_LEVEL": "WARNING"}
    manage(env, "migrate", "--no-input", "-v", "0")
    nodes = Path(tempfile.mkdtemp(prefix="vmotion-bench-inventory-"))
    for host in range(args.hosts):
        (nodes / f"host{host}.xml").write_text(node_xml(host, args.vms_per_host))
    manage(env, "shell", "--no-imports", code=(
        "from inventory.models import Host; Host.objects.bulk_create("
        f"[Host(name=f'host{{i:04}}', uri=f'test://{nodes}/host{{i}}.xml') for i in range({args.hosts})])"
    ))
    from redis import Redis

    Redis.from_url(REDIS_URL).flushdb()
    print(f"{args.hosts} hosts, {args.hosts * args.vms_per_host} VMs; a round must end within the {INTERVAL_S} s sync interval")
    print("workers  round                seconds  hosts read  hosts/s")
    results: dict[int, list[float]] = {}
    filled = False
    for count in [int(n) for n in args.workers.split(",")]:
        logs = Path(tempfile.mkdtemp(prefix="vmotion-bench-inventory-logs-"))
        workers = [
            start_in_session([str(PYTHON), "manage.py", "rqworker", "inventory", *WORKER_OPTIONS], cwd=ROOT, env=env, log_path=logs / f"worker{i}.log")
            for i in range(count)
        ]
        try:
            time.sleep(3)  # the workers import Django before they take jobs
            if not filled:
                seconds, read = round_time(env)
                print(f"{count:>7}  {'fills the inventory':<19} {seconds:8.1f}  {read:>10}  {read / seconds:7.0f}", flush=True)
                filled = True
            for number in range(1, args.rounds + 1):
                seconds, read = round_time(env)
                print(f"{count:>7}  {number:<19} {seconds:8.1f}  {read:>10}  {read / seconds:7.0f}", flush=True)
                results.setdefault(count, []).append(seconds)
        finally:
            for worker in workers:
                stop_session(worker)
    print("\nworkers  median s  worst s  within the interval")
    for count, times in results.items():
        print(f"{count:>7}  {statistics.median(times):8.1f}  {max(times):7.1f}  {'yes' if max(times) <= INTERVAL_S else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
