import json

from django.core.management.base import BaseCommand, CommandError

from vmotion.lab import cli
from vmotion.lab.config import LabError
from vmotion.lab.lab import down, start_host_daemon, status, stop_host_daemon, up
from vmotion.lab.register import register_lab


class Command(BaseCommand):
    help = "The built-in libvirt lab: up [--hosts N] [--guests M], down, status, stop-daemon HOST, start-daemon HOST."

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        cli.add_arguments(parser)
        return parser

    def handle(self, *args, **options):
        try:
            config = cli.config_from(options)
            command = options["command"]
            if command == "up":
                state = up(config, log=self.stdout.write)
                cli.print_state(state, self.stdout.write)
                for outcome in register_lab(state):
                    verdict = f"{outcome.vms_seen} VMs" if outcome.reachable else f"unreachable: {outcome.error}"
                    self.stdout.write(f"inventory: {outcome.host} {verdict}")
            elif command == "down":
                down(config, log=self.stdout.write)
            elif command == "status" and options["json"]:
                self.stdout.write(json.dumps(status(config).to_dict(), indent=2))
            elif command == "status":
                cli.print_state(status(config), self.stdout.write)
            elif command == "stop-daemon":
                stop_host_daemon(config, options["host"], log=self.stdout.write)
            elif command == "start-daemon":
                start_host_daemon(config, options["host"], log=self.stdout.write)
        except LabError as error:
            raise CommandError(str(error)) from error
