from django.core.management.base import BaseCommand, CommandError

from lab import cli
from lab.config import LabError
from lab.control import LabState
from devsupport.register import register_lab


class Command(BaseCommand):
    help = "The built-in libvirt lab: up [--hosts N] [--guests M], down, status, stop-daemon HOST, start-daemon HOST."

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        cli.add_arguments(parser)
        return parser

    def handle(self, *args, **options):
        try:
            cli.run(options, write=self.stdout.write, after_up=self.register)
        except LabError as error:
            raise CommandError(str(error)) from error

    def register(self, state: LabState) -> None:
        """Put the lab's hosts into the inventory and read them once."""
        for outcome in register_lab(state):
            verdict = f"{outcome.vms_seen} VMs" if outcome.reachable else f"unreachable: {outcome.error}"
            self.stdout.write(f"inventory: {outcome.host} {verdict}")
