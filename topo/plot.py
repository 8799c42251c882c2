"""Plots for the verification report: iperf3 throughput against buffer length.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no display, no global
backend switch), so plotting works on a headless build host and in threads.
"""

from __future__ import annotations

import math
import os


def _scale(values: list[float]) -> tuple[float, str]:
    """(divisor, unit) that shows the largest of ``values`` (bits/s) as Mbit/s or Gbit/s."""
    top = max(values, default=0.0)
    if top >= 1e9:
        return 1e9, "Gbit/s"
    return 1e6, "Mbit/s"


def throughput_plot(runs: list[dict], path: str, title: str) -> str:
    """Draw ``bits_per_second`` against ``length`` (bytes, log2 axis) of iperf3 ``runs``
    (the ``figures.runs`` of an iperf3 check) into a PNG at ``path``; returns ``path``.

    Runs without a length or a rate (a run that did not run) are left out; with none left
    the plot says so. Each point is labelled with its rate. The parent directory of
    ``path`` is created. RuntimeError when matplotlib is missing.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FixedLocator, NullLocator
    except ImportError as exc:  # pragma: no cover - a dependency of topo
        raise RuntimeError(f"plots need matplotlib (pip install matplotlib): {exc}") from exc

    points = sorted((int(r["length"]), float(r["bits_per_second"])) for r in runs
                    if r.get("length") and r.get("bits_per_second") is not None)
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title)
    ax.set_xlabel("buffer length (bytes, iperf3 -l)")
    divisor, unit = _scale([bps for _, bps in points])
    ax.set_ylabel(f"throughput ({unit})")
    ax.grid(True, which="major", alpha=0.3)
    if points:
        xs = [x for x, _ in points]
        ys = [bps / divisor for _, bps in points]
        ax.plot(xs, ys, marker="o", linewidth=1.5)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(sorted(set(xs))))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(x) for x in sorted(set(xs))])
        if len(set(xs)) == 1:  # one point: a little room either side
            ax.set_xlim(xs[0] / math.sqrt(2), xs[0] * math.sqrt(2))
        ax.set_ylim(0, max(ys) * 1.15 or 1)
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:.3g}", (x, y), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center")
        ax.set_xticks([])
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png")
    return path
