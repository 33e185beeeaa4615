"""What a subcommand prints. Without --json: lines for a person, on stdout. With --json,
stdout holds exactly one JSON document, so that `vmotion show 3 --json | jq` works (as
`kubectl -o json` and `openstack --format json`); the lines a person would read (messages,
progress) go to stderr. A failure with --json is the document {"error": ..., "checks": [...]}
on stdout, its message on stderr and a non-zero exit."""

import json

from django.core.management.base import CommandError, OutputWrapper

from migrations_app.checks.report import CheckReport


def _plain(text: str) -> str:
    return text  # Django colours what it writes to stderr as an error; a message is not one


class Output:
    def __init__(self, stdout: OutputWrapper, stderr: OutputWrapper, as_json: bool):
        self.as_json = as_json
        self._stdout = stdout
        self._stderr = stderr
        self._lines = stderr if as_json else stdout

    def say(self, line: str) -> None:
        """A line for a person."""
        self._lines.write(line, style_func=_plain)

    def warn(self, line: str) -> None:
        """A warning, on stderr with or without --json (where the document carries it too)."""
        self._stderr.write(f"warning: {line}", style_func=_plain)

    def result(self, fields: dict) -> None:
        """The JSON document of a success; a subcommand gives exactly one."""
        if self.as_json:
            self._stdout.write(json.dumps(fields))

    def fail(self, message: str, report: CheckReport | None = None, **fields) -> None:
        """Exit non-zero saying why; with --json, the error document says it too."""
        self.error(message, report, **fields)
        raise CommandError(message)

    def error(self, message: str, report: CheckReport | None = None, **fields) -> None:
        """With --json, the error document, for a failure raised by other means."""
        if self.as_json:
            self._stdout.write(error_document(message, report, **fields))


def error_document(message: str, report: CheckReport | None = None, **fields) -> str:
    return json.dumps({"error": message, "checks": check_fields(report), **fields})


def check_fields(report: CheckReport | None) -> list[dict]:
    if report is None:
        return []
    return [{"name": result.name, "status": result.status, "message": result.message} for result in report.results]
