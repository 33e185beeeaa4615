#!/usr/bin/env python3
"""Inventory sync at scale: how long one full round of per-host syncs takes over many hosts.

Each host is a libvirt test-driver node (`test:///<file>`) with its own domains, pool and
network, so every sync does the real work: a libvirt connection, the reads, and the
inventory's reconciliation in PostgreSQL. For each number of inventory workers, the bench
queues one round through the product (`inventory.jobs.enqueue_sync_all`, as the scheduler
does), times it until every job has run, and checks that every host was read. It also
reports what a host costs: the workers' CPU time, the whole machine's busy CPU time
(PostgreSQL and Redis included), and the workers' memory and open files after each round.

    .venv/bin/python bench/inventory.py                               # 2,500 hosts x 16 VMs
    .venv/bin/python bench/inventory.py --hosts 500 --workers 1,2 --rounds 3
    .venv/bin/python bench/inventory.py --worker-class rq.worker.Worker   # RQ's fork per job

Uses the PostgreSQL database vmotion_bench_inventory (dropped and created afresh) and Redis
database 11. It stops only the worker processes it started.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, not bench/: bench/script.py says why
    from bench import script

    script.start()

from bench import script  # noqa: E402
from bench.config import ROOT, VENV_PYTHON  # noqa: E402
from lab.processes import start_in_session, stop_session  # noqa: E402

DATABASE = "vmotion_bench_inventory"
REDIS_URL = "redis://127.0.0.1:6379/11"
INTERVAL_S = 30  # the default INVENTORY_SYNC_INTERVAL
WORKER_CLASS = "inventory.worker.InventoryWorker"  # the inventory workers of docs/operations/compose.md
TICKS = os.sysconf("SC_CLK_TCK")


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
    command = [str(VENV_PYTHON), "manage.py", *args] + (["-c", code] if code else [])
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def cpu_seconds(pid: int) -> float:
    """A process's CPU time, its waited-for children's (RQ's forked work horses) included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICKS


def machine_busy_seconds() -> float:
    """CPU time every core spent on anything but idling, since boot."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICKS


def footprint(pid: int) -> tuple[float, int]:
    """A process's resident memory in MiB and its open file descriptors."""
    rss_kib = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:"))
    return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def round_time(env: dict, workers: list) -> dict:
    """Queue one round, wait until every job ran; returns its seconds, hosts read and CPU time."""
    from redis import Redis
    from rq import Queue
    from rq.registry import StartedJobRegistry

    queue = Queue("inventory", connection=Redis.from_url(REDIS_URL))
    started = StartedJobRegistry(queue=queue)
    mark = manage(env, "shell", "--no-imports", code="from django.utils import timezone; print(timezone.now().isoformat())")
    cpu_before, busy_before = sum(cpu_seconds(w.pid) for w in workers), machine_busy_seconds()
    manage(env, "shell", "--no-imports", code="from inventory.jobs import enqueue_sync_all; enqueue_sync_all()")
    begin = time.monotonic()
    # A job a worker has taken sits in the intermediate queue until it enters the registry.
    while queue.count or queue.connection.llen(queue.intermediate_queue_key) or started.count:
        time.sleep(0.05)
    seconds = time.monotonic() - begin
    cpu, busy = sum(cpu_seconds(w.pid) for w in workers) - cpu_before, machine_busy_seconds() - busy_before
    read = manage(env, "shell", "--no-imports", code=f"from inventory.models import Host; print(Host.objects.filter(last_sync__gte='{mark}', last_error='').count())")
    return {"seconds": seconds, "read": int(read), "worker_cpu": cpu, "machine_busy": busy}


def main(argv: list[str]) -> int:
    parser = script.argument_parser(__doc__)
    parser.add_argument("--hosts", type=int, default=2500)
    parser.add_argument("--vms-per-host", type=int, default=16, help="40,000 VMs over 2,500 hosts")
    parser.add_argument("--workers", default="1,2,4", help="inventory worker counts to measure")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per worker count, after the round that fills the inventory")
    parser.add_argument("--worker-class", default=WORKER_CLASS, help=f"RQ worker class (default {WORKER_CLASS})")
    parser.add_argument("--interval", type=float, default=INTERVAL_S, help="the sync interval a round must fit in")
    args = parser.parse_args(argv)
    env = {**os.environ, "DATABASE_URL": script.fresh_database(DATABASE),
           "REDIS_URL": REDIS_URL, "SECRET_KEY": "bench-only", "DEBUG": "0", "LOG_LEVEL": "WARNING",
           # The fleet is libvirt's test driver, which the URI rule allows only in a lab install.
           "LIBVIRT_LOCAL_INSTALL": "1"}
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
    print(f"{args.hosts} hosts, {args.hosts * args.vms_per_host} VMs, {os.cpu_count()} cores, workers {args.worker_class}; "
          f"a round must end within the {args.interval:g} s sync interval")
    print("per host: the workers' CPU ms, and the machine's busy CPU ms (PostgreSQL, Redis, anything else running)")
    print("workers  round                seconds  hosts read  hosts/s  worker ms  machine ms  worker MiB/fds")
    results: dict[int, list[dict]] = {}
    filled = False
    for count in [int(n) for n in args.workers.split(",")]:
        logs = Path(tempfile.mkdtemp(prefix="vmotion-bench-inventory-logs-"))
        workers = [
            start_in_session([str(VENV_PYTHON), "manage.py", "rqworker", "inventory", "--worker-class", args.worker_class], cwd=ROOT, env=env, log_path=logs / f"worker{i}.log")
            for i in range(count)
        ]
        try:
            time.sleep(3)  # the workers import Django before they take jobs
            for number in ([] if filled else ["fills the inventory"]) + list(range(1, args.rounds + 1)):
                run = round_time(env, workers)
                memory = max(footprint(w.pid) for w in workers)
                print(f"{count:>7}  {number:<19} {run['seconds']:8.1f}  {run['read']:>5}/{args.hosts:<5} {run['read'] / run['seconds']:7.0f}"
                      f"  {1000 * run['worker_cpu'] / args.hosts:9.1f}  {1000 * run['machine_busy'] / args.hosts:10.1f}  {memory[0]:6.0f}/{memory[1]}", flush=True)
                if number != "fills the inventory":
                    results.setdefault(count, []).append(run)
            filled = True
        finally:
            for worker in workers:
                stop_session(worker)
    print("\nworkers  median s  worst s  fewest hosts read  within the interval")
    verdicts = [keeps_up(runs, args.hosts, args.interval) for runs in results.values()]
    for count, runs in results.items():
        times = [run["seconds"] for run in runs]
        fewest = min(run["read"] for run in runs)
        print(f"{count:>7}  {statistics.median(times):8.1f}  {max(times):7.1f}  {fewest:>11}/{args.hosts:<5}  {'yes' if keeps_up(runs, args.hosts, args.interval) else 'no'}")
    return 0 if verdicts and all(verdicts) else 1


def keeps_up(runs: list[dict], hosts: int, interval: float) -> bool:
    """Every round read every host, each within the interval: a round that left a host unread
    missed it, however fast it was."""
    return bool(runs) and all(run["read"] == hosts and run["seconds"] <= interval for run in runs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
