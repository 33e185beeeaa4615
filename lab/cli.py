"""The lab's command line, shared by `python -m lab` and `python manage.py lab`."""

import argparse
import json
from collections.abc import Callable, Mapping
from typing import Any

from lab.config import GuestWorkload, LabConfig
from lab.control import LabState, down, start_host_daemon, status, stop_host_daemon, up

Write = Callable[[str], Any]


def run(options: Mapping[str, Any], write: Write = print, after_up: Callable[[LabState], None] | None = None) -> None:
    """Carry out one parsed lab command. Raises LabError for anything the operator must fix."""
    config = config_from(options)
    command = options["command"]
    if command == "up":
        state = up(config, log=write)
        print_state(state, write)
        if after_up is not None:
            after_up(state)
    elif command == "down":
        down(config, log=write)
    elif command == "status" and options["json"]:
        write(json.dumps(status(config).to_dict(), indent=2))
    elif command == "status":
        print_state(status(config), write)
    elif command == "stop-daemon":
        stop_host_daemon(config, options["host"], log=write)
    elif command == "start-daemon":
        start_host_daemon(config, options["host"], log=write)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--lab-dir", help="default: $VMOTION_LAB_DIR or /var/lib/vmotion-lab")
    common.add_argument("--netns", help="default: $VMOTION_LAB_NETNS or vmotion-lab")
    commands = parser.add_subparsers(dest="command", required=True)
    up_command = commands.add_parser("up", parents=[common], help="start hosts and guests (idempotent)")
    up_command.add_argument("--hosts", type=int, default=3)
    up_command.add_argument("--guests", type=int, default=4)
    up_command.add_argument("--memory", type=int, default=128, help="guest memory in MiB")
    up_command.add_argument("--dirty-mb", type=int, default=16, help="working set each new guest rewrites, MiB")
    up_command.add_argument("--dirty-rate", type=int, default=1, help="MB/s each new guest rewrites")
    up_command.add_argument(
        "--without-migration-tls", action="append", default=[], metavar="HOST",
        help="give this host no certificates for encrypted migration (repeatable)",
    )
    commands.add_parser("down", parents=[common], help="stop everything the lab started (idempotent)")
    status_command = commands.add_parser("status", parents=[common], help="hosts and guests")
    status_command.add_argument("--json", action="store_true")
    for name, help_text in (("stop-daemon", "stop a host's libvirtd"), ("start-daemon", "start it again")):
        commands.add_parser(name, parents=[common], help=help_text).add_argument("host", help="e.g. lab-host2")


def config_from(options: Mapping[str, Any]) -> LabConfig:
    overrides = {}
    if options.get("lab_dir"):
        overrides["lab_dir"] = options["lab_dir"]
    if options.get("netns"):
        overrides["netns"] = options["netns"]
    if options["command"] == "up":
        overrides.update(
            host_count=options["hosts"],
            guest_count=options["guests"],
            guest_memory_mib=options["memory"],
            default_workload=GuestWorkload(dirty_mb=options["dirty_mb"], dirty_rate=options["dirty_rate"]),
            hosts_without_migration_tls=frozenset(options.get("without_migration_tls") or ()),
        )
    return LabConfig(**overrides)


def print_state(state: LabState, write: Callable[[str], Any] = print) -> None:
    write(f"lab {state.lab_dir}, netns {state.netns} ({'present' if state.netns_exists else 'absent'})")
    write(f"accel: {state.accel} ({state.accel_reason})")
    for host in state.hosts:
        daemon = "answers" if host.reachable else ("runs, no answer" if host.daemon_running else "stopped")
        write(f"  {host.name:<11} {host.address:<12} libvirtd {daemon:<15} {host.uri}  peer {host.peer_uri}")
        write(f"  {'':<11} migration TLS {'yes' if host.migration_tls else 'no'}  ssh {host.ssh_uri}  tls {host.tls_uri}")
    for guest in state.guests:
        write(f"  {guest.name:<11} {guest.ip:<10} {guest.mac}  {guest.state:<9} on {guest.host or '-'}")
