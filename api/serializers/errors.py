"""The body of every error the API answers: a sentence, and the checks or fields that are why."""

from rest_framework import serializers

from migrations_app.checks.report import CheckReport, CheckStatus


class CheckSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The check, e.g. memory_free")
    status = serializers.ChoiceField(choices=[(status.value, status.label) for status in CheckStatus])
    message = serializers.CharField(help_text="What it found, in a sentence an operator can act on")


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="Why the request was refused; nothing was changed")
    checks = CheckSerializer(many=True, help_text="The pre-flight checks when they are why, every one with its verdict; else empty")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), help_text="Each field of the request that is wrong, with why; else empty"
    )


class ConflictSerializer(ErrorSerializer):
    task = serializers.IntegerField(allow_null=True, help_text="The VM's migration that has not ended yet (null if it was submitted at this very moment)")


def checks_of(report: CheckReport | None) -> list[dict]:
    if report is None:
        return []
    return [{"name": result.name, "status": result.status, "message": result.message} for result in report.results]


def error_body(message: str, *, report: CheckReport | None = None, errors: dict | None = None) -> dict:
    return {"message": message, "checks": checks_of(report), "errors": errors or {}}
