"""What a subcommand prints: lines for a person on stdout, and with --json one JSON line
last, also when the command fails ({"error": ..., "checks": [...]})."""

import json

from django.core.management.base import CommandError, OutputWrapper

from migrations_app.checks.report import CheckReport


def _plain(text: str) -> str:
    return text  # Django colours what it writes to stderr as an error; a message is not one


class Output:
    def __init__(self, stdout: OutputWrapper, stderr: OutputWrapper, as_json: bool):
        self.as_json = as_json
        self._stdout = stdout
        self._lines = stdout

    def say(self, line: str) -> None:
        """A line for a person."""
        self._lines.write(line, style_func=_plain)

    def result(self, fields: dict) -> None:
        """The JSON document of a success; a subcommand gives exactly one."""
        if self.as_json:
            self._stdout.write(json.dumps(fields))

    def fail(self, message: str, report: CheckReport | None = None, **fields) -> None:
        """Exit non-zero saying why; with --json, the error document says it too."""
        if self.as_json:
            self._stdout.write(error_document(message, report, **fields))
        raise CommandError(message)


def error_document(message: str, report: CheckReport | None = None, **fields) -> str:
    return json.dumps({"error": message, "checks": check_fields(report), **fields})


def check_fields(report: CheckReport | None) -> list[dict]:
    if report is None:
        return []
    return [{"name": result.name, "status": result.status, "message": result.message} for result in report.results]
