from __future__ import annotations

from .check_report import CheckReport


class MigrationRequestError(Exception):
    """An operator's request that cannot be carried out; nothing was changed.

    `report` holds the pre-flight checks when they are why.
    """

    def __init__(self, message: str, report: CheckReport | None = None):
        super().__init__(message)
        self.report = report
