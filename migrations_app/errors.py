from __future__ import annotations

from migrations_app.checks.report import CheckReport


class MigrationRequestError(Exception):
    """An operator's request that cannot be carried out; nothing was changed.

    `report` holds the pre-flight checks when they are why.
    """

    def __init__(self, message: str, report: CheckReport | None = None):
        super().__init__(message)
        self.report = report


class ActiveMigrationExists(MigrationRequestError):
    """The VM already has a migration that has not ended: one at a time per VM.

    `task` is that migration, or None when the database refused a racing second one."""

    def __init__(self, message: str, task=None):
        super().__init__(message)
        self.task = task


class RoleRefused(MigrationRequestError):
    """The user's role does not allow this request (an evacuation schedule by an Operator, say)."""


class StateConflict(MigrationRequestError):
    """The object's state does not allow this request now (cancelling a task that has ended,
    entering maintenance twice): the request was well formed, and would be refused again until
    the state changes. The API answers 409."""
