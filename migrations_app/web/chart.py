"""The progress chart: remaining memory and dirty rate over time, as SVG polylines the page
draws server-side. Pure: sample figures in, coordinates out."""

from __future__ import annotations

from dataclasses import dataclass

from migrations_app.convergence.policy import MIB
from migrations_app.convergence.progress import SampleFigures

MAX_POINTS = 300  # enough for a smooth line; long migrations are thinned evenly


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    remaining_points: str  # "x,y x,y ..." for <polyline points>
    dirty_points: str
    remaining_peak_mib: int  # what the top of the chart means, for its legend
    dirty_peak_mib_s: int
    seconds: float  # the time the x axis spans


def progress_chart(samples: list[SampleFigures], width: int = 640, height: int = 160) -> Chart | None:
    """None until there are two samples to draw a line between."""
    samples = [sample for sample in samples if sample.data_total]  # before QEMU reports the job's size
    if len(samples) < 2:
        return None
    step = max(1, -(-len(samples) // MAX_POINTS))
    shown = samples[::step] if samples[-1] in samples[::step] else [*samples[::step], samples[-1]]
    start, end = shown[0].elapsed_ms, shown[-1].elapsed_ms
    span = max(end - start, 1)
    remaining_peak = max(max(s.data_remaining for s in shown), 1)
    dirty_peak = max(max(s.dirty_rate_bytes_s for s in shown), 1)

    def line(values: list[int], peak: int) -> str:
        return " ".join(
            f"{(s.elapsed_ms - start) * width / span:.1f},{height - value * height / peak:.1f}" for s, value in zip(shown, values)
        )

    return Chart(
        width=width,
        height=height,
        remaining_points=line([s.data_remaining for s in shown], remaining_peak),
        dirty_points=line([s.dirty_rate_bytes_s for s in shown], dirty_peak),
        remaining_peak_mib=round(remaining_peak / MIB),
        dirty_peak_mib_s=round(dirty_peak / MIB),
        seconds=round(span / 1000, 1),
    )
