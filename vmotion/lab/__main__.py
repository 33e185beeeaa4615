"""python -m vmotion.lab up|down|status|stop-daemon HOST|start-daemon HOST (no Django needed)."""

import argparse
import json
import sys

from vmotion.lab.config import GuestWorkload, LabConfig, LabError
from vmotion.lab.lab import LabState, down, start_host_daemon, status, stop_host_daemon, up


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = _config_from(args)
        if args.command == "up":
            _print_state(up(config))
        elif args.command == "down":
            down(config)
        elif args.command == "status" and args.json:
            print(json.dumps(status(config).to_dict(), indent=2))
        elif args.command == "status":
            _print_state(status(config))
        elif args.command == "stop-daemon":
            stop_host_daemon(config, args.host)
        elif args.command == "start-daemon":
            start_host_daemon(config, args.host)
    except LabError as error:
        print(f"vmotion.lab: {error}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vmotion.lab", description="The vmotion libvirt lab.")
    parser.add_argument("--lab-dir", help="default: $VMOTION_LAB_DIR or /var/lib/vmotion-lab")
    parser.add_argument("--netns", help="default: $VMOTION_LAB_NETNS or vmotion-lab")
    commands = parser.add_subparsers(dest="command", required=True)
    up_command = commands.add_parser("up", help="start hosts and guests (idempotent)")
    up_command.add_argument("--hosts", type=int, default=3)
    up_command.add_argument("--guests", type=int, default=4)
    up_command.add_argument("--memory", type=int, default=128, help="guest memory in MiB")
    up_command.add_argument("--dirty-mb", type=int, default=16, help="guest working set in MiB")
    up_command.add_argument("--dirty-rate", type=int, default=1, help="MB/s the guest rewrites")
    commands.add_parser("down", help="stop everything the lab started (idempotent)")
    status_command = commands.add_parser("status", help="hosts and guests")
    status_command.add_argument("--json", action="store_true")
    for name, help_text in (("stop-daemon", "stop a host's libvirtd"), ("start-daemon", "start it again")):
        commands.add_parser(name, help=help_text).add_argument("host", help="e.g. lab-host2")
    return parser


def _config_from(args: argparse.Namespace) -> LabConfig:
    overrides = {}
    if args.lab_dir:
        overrides["lab_dir"] = args.lab_dir
    if args.netns:
        overrides["netns"] = args.netns
    if args.command == "up":
        overrides.update(
            host_count=args.hosts,
            guest_count=args.guests,
            guest_memory_mib=args.memory,
            default_workload=GuestWorkload(dirty_mb=args.dirty_mb, dirty_rate=args.dirty_rate),
        )
    return LabConfig(**overrides)


def _print_state(state: LabState) -> None:
    print(f"lab {state.lab_dir}, netns {state.netns} ({'present' if state.netns_exists else 'absent'})")
    print(f"accel: {state.accel} ({state.accel_reason})")
    for host in state.hosts:
        daemon = "answers" if host.reachable else ("runs, no answer" if host.daemon_running else "stopped")
        print(f"  {host.name:<11} {host.address:<11} libvirtd {daemon:<16} {host.uri}  peer {host.peer_uri}")
    for guest in state.guests:
        print(f"  {guest.name:<11} {guest.ip:<11} {guest.mac}  {guest.state:<9} on {guest.host or '-'}")


if __name__ == "__main__":
    sys.exit(main())
