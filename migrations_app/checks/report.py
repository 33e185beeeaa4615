"""The outcome of the pre-flight checks: each check's verdict and its sentence."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CheckStatus(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAIL = "fail"

    @property
    def label(self) -> str:
        return {"ok": "OK", "warning": "Warning", "fail": "Fail"}[self.value]


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    message: str


@dataclass(frozen=True)
class CheckReport:
    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(result.status != CheckStatus.FAIL for result in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if result.status == CheckStatus.FAIL]

    def summary(self) -> str:
        return " ".join(result.message for result in self.failures) or "All pre-flight checks passed."
