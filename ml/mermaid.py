"""Mermaid charts as text. GitHub renders a ```mermaid block inline (PR comments, job summaries, Markdown files),
where a PNG can only be a link to an artifact. Pure functions of numbers and labels: no plotting library.

xychart-beta has no legend, so each chart names its series' colours in a caption below it (`legend`), and the
palette is fixed by an init directive so that the caption holds whatever theme the reader uses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

# Matplotlib's first colours, as the PNG plots draw the same series: (hex, name for the caption).
PALETTE = (("#1f77b4", "blue"), ("#ff7f0e", "orange"), ("#2ca02c", "green"), ("#d62728", "red"))
DECIMALS = 4


@dataclass(frozen=True)
class Series:
    kind: str  # "line" | "bar"
    name: str
    values: tuple[float, ...]


def block(lines: Sequence[str]) -> list[str]:
    """A fenced Mermaid block, as Markdown lines."""
    return ["```mermaid", *lines, "```"]


def number(value: float, decimals: int = DECIMALS) -> str:
    """A finite number in plain decimal notation (Mermaid reads no exponent), without trailing zeros."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be charted")
    text = f"{round(value, decimals):.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def quoted(text: str) -> str:
    """A Mermaid string: double quotes, none inside (Mermaid has no escape for them), on one line."""
    return '"' + " ".join(str(text).replace('"', "'").split()) + '"'


def finite(values: Sequence[float]) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def xychart(
    title: str,
    x_title: str,
    x_labels: Sequence[str],
    y_title: str,
    y_range: tuple[float, float],
    series: Sequence[Series],
) -> list[str]:
    """An xychart-beta: every series has one value per x label, coloured by PALETTE in order."""
    if not series or len(series) > len(PALETTE):
        raise ValueError(f"{len(series)} series: a chart takes 1 to {len(PALETTE)}")
    for one in series:
        if len(one.values) != len(x_labels):
            raise ValueError(f"{one.name}: {len(one.values)} values for {len(x_labels)} x labels")
    palette = ", ".join(colour for colour, _ in PALETTE[: len(series)])
    init = {"themeVariables": {"xyChart": {"plotColorPalette": palette}}}
    lines = [
        f"%%{{init: {json.dumps(init)}}}%%",
        "xychart-beta",
        f"  title {quoted(title)}",
        f"  x-axis {quoted(x_title)} [{', '.join(quoted(label) for label in x_labels)}]",
        f"  y-axis {quoted(y_title)} {number(y_range[0])} --> {number(y_range[1])}",
    ]
    lines += [
        f"  {one.kind} {quoted(one.name)} [{', '.join(number(v) for v in one.values)}]" for one in series
    ]
    return block(lines)


def legend(series: Sequence[Series]) -> str:
    """The caption naming each series' colour: `line` for a line, `bars` for bars."""
    parts = [
        f"{name} {'bars' if one.kind == 'bar' else 'line'}: {one.name}"
        for one, (_, name) in zip(series, PALETTE, strict=False)
    ]
    return "; ".join(parts) + "."


def padded_range(
    values: Sequence[float], floor: float | None = None, ceiling: float | None = None
) -> tuple[float, float]:
    """A y range around the values with a 5 % margin, rounded outwards to half a power of ten of their
    spread, clipped to the bounds the quantity has (0 and 1 for a share)."""
    low, high = min(values), max(values)
    spread = (high - low) or abs(high) * 0.1 or 0.1  # a flat series: a tenth of its value
    margin = spread * 0.05
    step = 10 ** math.floor(math.log10(spread)) / 2
    low, high = math.floor((low - margin) / step) * step, math.ceil((high + margin) / step) * step
    if floor is not None:
        low = max(low, floor)
    if ceiling is not None:
        high = min(high, ceiling)
    return round(low, DECIMALS), round(high, DECIMALS)


def thinned(count: int, most: int) -> list[int]:
    """Indexes of at most `most` of `count` points, evenly spread, the first and the last always kept."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})
