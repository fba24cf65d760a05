"""Charts as inline SVG (matplotlib), for the memoria and the IEC's report of the night.

Each function returns one ``<svg>`` element as text, ready to be placed in the
HTML; the same markup renders in browsers and in WeasyPrint's PDF. Text is
drawn as paths, so no font has to be present where the file is opened, and the
output is deterministic (fixed hash salt, no date in the metadata).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

plt.rcParams.update(
    {
        "svg.hashsalt": "prep-iac",
        "svg.fonttype": "none",
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }
)
PALETTE = ("#1f5f99", "#d9822b", "#3a9a5b", "#b33c3c", "#7b5ea7", "#777777")
SIZE = (7.2, 2.8)


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def time_lines(
    title: str, times: Sequence[datetime], series: Mapping[str, Sequence[float]], ylabel: str
) -> str:
    """Lines over local time (hours on the axis)."""
    figure, axes = plt.subplots(figsize=SIZE)
    for (label, values), color in zip(series.items(), PALETTE, strict=False):
        # matplotlib converts datetimes itself; its stubs only declare arrays.
        axes.plot(cast(Any, list(times)), list(values), label=label, color=color, linewidth=1.3)
    axes.set_title(title, loc="left", fontsize=10)
    axes.set_ylabel(ylabel)
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%d/%m %H:%M"))  # type: ignore[no-untyped-call]
    figure.autofmt_xdate()
    if len(series) > 1:
        axes.legend(frameon=False, fontsize=8)
    return _svg(figure)


def bars(
    title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str,
    reference: float | None = None,
) -> str:  # fmt: skip
    """Grouped bars, one group per label; ``reference`` draws a dashed level (e.g. 1×)."""
    figure, axes = plt.subplots(figsize=SIZE)
    count = max(1, len(series))
    width = 0.8 / count
    for index, ((name, values), color) in enumerate(zip(series.items(), PALETTE, strict=False)):
        positions = [i + (index - (count - 1) / 2) * width for i in range(len(labels))]
        axes.bar(positions, list(values), width=width, label=name, color=color)
    axes.set_xticks(range(len(labels)), list(labels))
    if reference is not None:
        axes.axhline(reference, color="#444444", linestyle="--", linewidth=0.8)
    axes.set_title(title, loc="left", fontsize=10)
    axes.set_ylabel(ylabel)
    if count > 1:
        axes.legend(frameon=False, fontsize=8)
    return _svg(figure)


def hour_profile(title: str, series: Mapping[str, Sequence[float]], ylabel: str) -> str:
    """Lines over the 24 hours of a day."""
    figure, axes = plt.subplots(figsize=SIZE)
    for (label, values), color in zip(series.items(), PALETTE, strict=False):
        axes.plot(range(len(values)), list(values), label=label, color=color, linewidth=1.3,
                  marker="o", markersize=2.5)  # fmt: skip
    axes.set_xticks(range(0, 24, 2))
    axes.set_xlabel("hora local")
    axes.set_ylabel(ylabel)
    axes.set_title(title, loc="left", fontsize=10)
    axes.legend(frameon=False, fontsize=8)
    return _svg(figure)


def grid(
    title: str, rows: Sequence[str], columns: Sequence[str], cells: Sequence[Sequence[str]],
    colors: dict[str, str], names: dict[str, str],
) -> str:  # fmt: skip
    """A row per item and a column per step, each cell coloured by its state (a timeline)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    states = list(colors)
    index = {state: i for i, state in enumerate(states)}
    values = [[index.get(cell, 0) for cell in row] for row in cells]
    figure, axes = plt.subplots(figsize=(SIZE[0], 0.9 + 0.32 * max(1, len(rows))))
    axes.imshow(values, aspect="auto", interpolation="nearest", vmin=0, vmax=len(states) - 1,
                cmap=ListedColormap([colors[s] for s in states]))  # fmt: skip
    axes.set_yticks(range(len(rows)), list(rows))
    step = max(1, len(columns) // 12)
    axes.set_xticks(range(0, len(columns), step), list(columns)[::step], rotation=45, ha="right")
    axes.grid(False)
    axes.set_title(title, loc="left", fontsize=10)
    used = sorted({cell for row in cells for cell in row if cell in index}, key=index.__getitem__)
    axes.legend(handles=[Patch(color=colors[s], label=names.get(s, s)) for s in used],
                frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # fmt: skip
    return _svg(figure)
