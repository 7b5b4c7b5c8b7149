"""Figures held against their floors: the table people read, the JSON a later run is compared
with, and the figure furthest from its target, which is the next thing to fix."""

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

Raw = dict[str, object]
"""The raw numbers behind a section's figures, as they go into the JSON."""


@dataclass(frozen=True)
class Figure:
    """One measurement and what it is held against; `ratio` is value / against."""

    section: str
    name: str
    value: float
    against: float
    against_name: str
    unit: str
    at_most: float | None = None
    at_least: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.against if self.against else math.inf

    @property
    def shortfall(self) -> float | None:
        """How many times the ratio misses its target (at most 1 when it meets it); None
        for a figure without a target."""
        if self.at_most is not None:
            return self.ratio / self.at_most
        if self.at_least is not None:
            return self.at_least / self.ratio if self.ratio else math.inf
        return None

    @property
    def target(self) -> str:
        if self.at_most is not None:
            return f"≤ {self.at_most:g}x"
        if self.at_least is not None:
            return f"≥ {self.at_least:g}x"
        return ""


@dataclass
class Section:
    """What one benchmark module measured."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    raw: Raw = field(default_factory=dict)


def _amount(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "B":
        return f"{value / 1e6:.1f} MB" if value >= 1e6 else f"{value:,.0f} B"
    return f"{value:,.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"


def next_to_fix(figures: list[Figure]) -> Figure | None:
    """The figure furthest from its target (missed or not): the next thing to fix."""
    targeted = [f for f in figures if f.shortfall is not None]
    return max(targeted, key=lambda f: f.shortfall or 0.0) if targeted else None


def table(figures: list[Figure]) -> Table:
    """Every figure as a row: measured, what it is held against, the ratio, the target."""
    out = Table(title="Slipway benchmarks: ratios against floors measured in this run")
    for column in ("section", "figure", "measured", "against", "ratio", "target", "notes"):
        out.add_column(column, justify="right" if column in ("measured", "ratio") else "left")
    for f in figures:
        verdict = ""
        if f.shortfall is not None:
            verdict = " [green]met[/]" if f.shortfall <= 1 else " [red]missed[/]"
        out.add_row(
            f.section,
            f.name,
            _amount(f.value, f.unit),
            f"{f.against_name}: {_amount(f.against, f.unit)}",
            f"{f.ratio:.2f}x",
            f.target + verdict,
            f.note,
        )
    return out


def markdown(figures: list[Figure]) -> str:
    """The table as Markdown, for docs/performance.md."""
    lines = [
        "| section | figure | measured | against | ratio | target | notes |",
        "|---|---|---:|---|---:|---|---|",
    ]
    for f in figures:
        met = ""
        if f.shortfall is not None:
            met = " met" if f.shortfall <= 1 else " **missed**"
        lines.append(
            f"| {f.section} | {f.name} | {_amount(f.value, f.unit)} | "
            f"{f.against_name}: {_amount(f.against, f.unit)} | {f.ratio:.2f}x | "
            f"{f.target}{met} | {f.note} |"
        )
    return "\n".join(lines)


def show(console: Console, sections: list[Section]) -> None:
    """Print the table and name the next thing to fix."""
    figures = [f for s in sections for f in s.figures]
    console.print(table(figures))
    worst = next_to_fix(figures)
    if worst is not None:
        console.print(
            f"Next thing to fix: [bold]{worst.section} / {worst.name}[/] at {worst.ratio:.2f}x "
            f"(target {worst.target}, {worst.shortfall:.2f}x off)"
        )


def write_json(
    path: Path, mode: str, machine: Raw, seconds: float, sections: list[Section]
) -> None:
    """Every raw number, each figure with its ratio, and the machine they were measured on."""
    figures = [f for s in sections for f in s.figures]
    worst = next_to_fix(figures)
    record = {
        "mode": mode,
        "seconds": round(seconds, 1),
        "machine": machine,
        "figures": [
            {**asdict(f), "ratio": f.ratio, "shortfall": f.shortfall, "target": f.target}
            for f in figures
        ],
        "next_to_fix": f"{worst.section} / {worst.name}" if worst else None,
        "raw": {s.name: s.raw for s in sections},
        "markdown": markdown(figures),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
