"""What an operator may ask of a migration, with its defaults and limits defined once for
the model, the form, the CLI and the service layer."""

from __future__ import annotations

from dataclasses import dataclass

from migrations_app.choices import Priority
from migrations_app.errors import MigrationRequestError
from migrations_app.convergence.policy import MIB, ConvergenceInputs

DEFAULT_MAX_DOWNTIME_MS = 300  # libvirt's own default
MAX_DOWNTIME_RANGE_MS = (1, 60_000)
BANDWIDTH_RANGE_MIB_S = (1, 100_000)


@dataclass(frozen=True)
class MigrationOptions:
    priority: int = Priority.NORMAL
    max_downtime_ms: int = DEFAULT_MAX_DOWNTIME_MS
    bandwidth_mib_s: int | None = None  # None: uncapped
    allow_post_copy: bool = False
    allow_auto_converge: bool = True
    reason: str = ""

    def convergence_inputs(self, memory_bytes: int) -> ConvergenceInputs:
        """The options as the convergence policy reads them, for a guest of this size."""
        return ConvergenceInputs(
            slo_downtime_ms=self.max_downtime_ms,
            bandwidth_bytes_s=self.bandwidth_mib_s * MIB if self.bandwidth_mib_s else None,
            allow_post_copy=self.allow_post_copy,
            allow_auto_converge=self.allow_auto_converge,
            memory_bytes=memory_bytes,
        )

    def validate(self) -> None:
        low, high = MAX_DOWNTIME_RANGE_MS
        if self.priority not in Priority.values:
            raise MigrationRequestError(f"Priority must be one of {', '.join(p.label.lower() for p in Priority)}.")
        if not low <= self.max_downtime_ms <= high:
            raise MigrationRequestError(f"Max downtime must be between {low} and {high} ms.")
        low, high = BANDWIDTH_RANGE_MIB_S
        if self.bandwidth_mib_s is not None and not low <= self.bandwidth_mib_s <= high:
            raise MigrationRequestError(f"Bandwidth must be between {low} and {high} MiB/s, or empty for uncapped.")
