"""`vmotion --help` and every subcommand's --help stay as operators and scripts know them.

The snapshot holds what argparse builds each help text from (usage, descriptions, every
argument's flags, metavar, choices, default and help, the subcommands in their order), not the
rendered text, which wraps with the terminal's width and changes with the Python version.
Django's own options (--verbosity, --settings...) are Django's to change and are left out.
After a deliberate change to the command line, rewrite the snapshot:

    python manage.py shell -c "from tests.unit.migrations_app.cli.test_cli_help import write_snapshot; write_snapshot()"
"""

import argparse
import json
from pathlib import Path

from django.core.management.base import BaseCommand

from migrations_app.management.commands.vmotion import Command

SNAPSHOT = Path(__file__).with_name("cli_help.json")


def help_tree() -> dict[str, dict]:
    """Each parser of `vmotion`, keyed by the words that reach it ("" is `vmotion` itself)."""
    parser = Command().create_parser("manage.py", "vmotion")
    djangos = {action.dest for action in BaseCommand().create_parser("manage.py", "any")._actions} - {"help"}
    return _walk(parser, (), djangos)


def _walk(parser: argparse.ArgumentParser, words: tuple[str, ...], left_out: set[str]) -> dict[str, dict]:
    tree = {" ".join(words): {
        "prog": parser.prog,
        "usage": parser.usage,
        "description": parser.description,
        "epilog": parser.epilog,
        "arguments": [_argument(action) for action in parser._actions if action.dest not in left_out],
        "mutually_exclusive": [
            {"required": group.required, "arguments": [action.dest for action in group._group_actions]}
            for group in parser._mutually_exclusive_groups
        ],
    }}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                tree.update(_walk(sub, (*words, name), set()))
    return tree


def _argument(action: argparse.Action) -> dict:
    described = {
        "flags": list(action.option_strings),
        "dest": action.dest,
        "action": type(action).__name__,
        "nargs": action.nargs,
        "metavar": list(action.metavar) if isinstance(action.metavar, tuple) else action.metavar,
        "type": getattr(action.type, "__name__", action.type),
        "default": action.default,
        "required": action.required,
        "help": action.help,
    }
    if isinstance(action, argparse._SubParsersAction):
        described["subcommands"] = list(action.choices)
        described["listed"] = [[shown.dest, shown.help] for shown in action._choices_actions]
    else:
        described["choices"] = list(action.choices) if action.choices is not None else None
    return described


def write_snapshot() -> None:
    """The snapshot, one argument a line, so that a change reads as a one-line diff."""
    parsers = []
    for words, parser in help_tree().items():
        fields = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in parser.items() if key != "arguments"]
        arguments = ",\n".join(f"   {json.dumps(argument)}" for argument in parser["arguments"])
        fields.append(f'  "arguments": [\n{arguments}\n  ]')
        parsers.append(f" {json.dumps(words)}: {{\n" + ",\n".join(fields) + "\n }")
    SNAPSHOT.write_text("{\n" + ",\n".join(parsers) + "\n}\n")


def test_every_subcommands_help_is_the_one_in_the_snapshot():
    assert help_tree() == json.loads(SNAPSHOT.read_text())


def test_the_snapshot_covers_every_subcommand():
    assert sorted(help_tree()) == [
        "", "balance", "cancel", "check", "cluster", "cluster bandwidth", "cluster cpu", "cluster disk-images", "cluster encryption", "force-complete",
        "host", "host add", "host bandwidth", "host degrade", "host migration-tls", "host restore", "host uri",
        "maintenance", "migrate", "move-storage", "recommend", "rules", "rules add", "rules delete", "rules fix", "rules list",
        "schedule", "schedule add", "schedule delete", "schedule disable", "schedule enable", "schedule list", "schedule show",
        "show", "tasks",
    ]
