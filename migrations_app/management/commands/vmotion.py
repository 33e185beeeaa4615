"""`manage.py vmotion`: parses the command line and calls the subcommand's handler; the
subcommands live in migrations_app/cli/, one module per group."""

from django.core.management.base import BaseCommand

from migrations_app import cli


class Command(BaseCommand):
    help = "Live migration from the command line: migrate, check, recommend, tasks, show, cancel, force-complete, maintenance, host (add, uri, degrade...), schedule, balance, rules, cluster cpu, cluster encryption, cluster bandwidth."
    as_json = False  # run_from_argv sets it before argparse reads the line (call_command cannot)

    def add_arguments(self, parser):
        cli.add_subcommands(parser)

    def run_from_argv(self, argv):
        self.as_json = "--json" in argv
        return super().run_from_argv(argv)

    def create_parser(self, prog_name, subcommand, **kwargs):
        """With --json, a command line argparse rejects also gets its JSON error document."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        for each in cli.every_parser(parser):
            each.error = self._json_error(each.error)
        return parser

    def _json_error(self, error):
        def report(message):
            if self.as_json:
                self.stdout.write(cli.error_document(message))
            error(message)

        return report

    def handle(self, *args, handler, json, **arguments):
        cli.run(handler, cli.Output(self.stdout, self.stderr, as_json=json), arguments)
