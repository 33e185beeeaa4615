"""The `vmotion` command line (`manage.py vmotion ...`), one module per group of
subcommands, as kubectl's and openstack's: each module's `register(commands, json_option)`
adds its subcommands to the parser and names each one's handler, a function
`handler(out, **arguments)`; `output.Output` decides where what a handler says goes.
The management command only parses and calls `run`."""

import argparse
from collections.abc import Callable

from django.core.management.base import CommandError

from migrations_app.errors import MigrationRequestError

from . import balance, clusters, hosts, maintenance, migrate, rules, schedules, tasks
from .output import Output, error_document

# In the order `vmotion --help` lists their subcommands.
GROUPS = (migrate, tasks, maintenance, hosts, balance, rules, clusters, schedules)


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    json_option = argparse.ArgumentParser(add_help=False)
    json_option.add_argument("--json", action="store_true", help="end with one JSON line, also when the command fails")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(commands, json_option)


def run(handler: Callable, out: Output, arguments: dict) -> None:
    try:
        handler(out, **arguments)
    except MigrationRequestError as error:
        out.fail(str(error), error.report)
    except CommandError:
        raise
    except Exception as error:
        # A fault of vmotion's own still leaves a script one JSON document; the traceback follows on stderr.
        out.error(f"{type(error).__name__}: {error}")
        raise


def every_parser(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """`parser` and each subcommand's parser, at every depth."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(every_parser(sub))
    return found


__all__ = ["Output", "add_subcommands", "error_document", "every_parser", "run"]
