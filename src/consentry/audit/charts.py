"""Charts as inline PNG (base64 data URIs), so the report is one file a DPO can
mail or archive and still read in ten years. matplotlib's Agg backend: no display."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

COLOURS = {
    "objected": "#c0392b",
    "objection_withdrawn": "#e69f00",
    "consent_given": "#2e7d32",
    "consent_withdrawn": "#7b5ea7",
}
LABELS = {
    "objected": "objections",
    "objection_withdrawn": "objections withdrawn",
    "consent_given": "consents given",
    "consent_withdrawn": "consents withdrawn",
}


def to_data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def events_over_time(periods: list[str], series: dict[str, list[int]], unit: str) -> str:
    """Objections, withdrawals and consents per period, one line each."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    x = range(len(periods))
    for typ, values in series.items():
        ax.plot(x, values, label=LABELS.get(typ, typ), color=COLOURS.get(typ), marker="o" if len(x) < 40 else None)
    step = max(1, len(periods) // 12)
    ax.set_xticks(list(x)[::step], periods[::step], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"events per {unit}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    ax.set_ylim(bottom=0)
    return to_data_uri(fig)


NEUTRAL = ["#1f77b4", "#e69f00", "#7b5ea7", "#17becf", "#8c564b", "#9e9e9e", "#2e7d32", "#c0392b"]
STATUS = ["#2e7d32", "#c0392b", "#9e9e9e"]  # delivered, failed, not yet sent


def stacked_bars(
    categories: list[str], stacks: dict[str, list[int]], ylabel: str, *, horizontal: bool = False,
    palette: list[str] | None = None,
) -> str:
    """One bar per category, split into stacks (e.g. delivered / failed / pending)."""
    height = max(2.5, 0.32 * len(categories) + 1) if horizontal else 3.2
    fig, ax = plt.subplots(figsize=(8, height))
    base = [0] * len(categories)
    palette = palette or NEUTRAL
    for i, (name, values) in enumerate(stacks.items()):
        colour = palette[i % len(palette)]
        if horizontal:
            ax.barh(categories, values, left=base, label=name, color=colour)
        else:
            ax.bar(categories, values, bottom=base, label=name, color=colour)
        base = [b + v for b, v in zip(base, values, strict=True)]
    if horizontal:
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        ax.tick_params(axis="y", labelsize=8)
    else:
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x" if horizontal else "y", alpha=0.3)
    if len(stacks) > 1:
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return to_data_uri(fig)
