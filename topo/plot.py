"""Plots for the verification report: iperf3 throughput against buffer length - each
length's median with error bars for its spread over the repeats (lowest to highest run),
and the reference run (iperf3's default length, another check of the same path) as a
dashed line with its spread as a band.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no display, no global
backend switch), so plotting works on a headless build host and in threads. Rates print
as everywhere else in topo: the axis unit is ``api.bps_unit`` of the largest rate, each
point's label is ``api.fmt_bps`` of its rate.
"""

from __future__ import annotations

import math
import os


def points(runs: list[dict]) -> list[tuple[int, float]]:
    """``(length bytes, bits_per_second)`` of iperf3 ``runs``, by length; runs without a
    length or a rate (a run that did not run) are left out."""
    return sorted((int(r["length"]), float(r["bits_per_second"])) for r in runs
                  if r.get("length") and r.get("bits_per_second") is not None)


def spreads(runs: list[dict]) -> list[tuple[float, float]] | None:
    """``(min_bps, max_bps)`` of each plotted run (in :func:`points` order) when the runs
    were repeated (a run with ``repeats`` > 1 carries its spread), else None."""
    kept = sorted((int(r["length"]), r) for r in runs
                  if r.get("length") and r.get("bits_per_second") is not None)
    if not any((r.get("repeats") or 1) > 1 for _, r in kept):
        return None
    return [(float(r.get("min_bps", r["bits_per_second"])), float(r.get("max_bps", r["bits_per_second"])))
            for _, r in kept]


def figure(runs: list[dict], title: str, reference: dict | None = None, reference_label: str = "reference"):
    """The matplotlib ``Figure`` (7 x 4 inches at 100 dpi, on an Agg canvas) of
    ``bits_per_second`` against ``length`` (bytes, log2 axis) of iperf3 ``runs`` (the
    ``figures.runs`` of an iperf3 check): one line with a marker per length, y in the unit
    ``bps_unit`` picks for the largest rate, each point labelled with ``fmt_bps`` of its
    rate. Repeated runs (``repeats`` > 1) plot their median (``bits_per_second``) with
    error bars from ``min_bps`` to ``max_bps``. ``reference``, a run of the same path at
    iperf3's default length (a ``figures.runs`` entry of another check), is a dashed
    horizontal line at its rate, its spread a band, named ``reference_label`` in a legend.
    With no run left, the axes say "no runs". RuntimeError when matplotlib is missing.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FixedLocator, NullLocator
    except ImportError as exc:  # pragma: no cover - a dependency of topo
        raise RuntimeError(f"plots need matplotlib (pip install matplotlib): {exc}") from exc
    from ansible_collections.topo.lab.plugins.module_utils.api import bps_unit, fmt_bps

    pts = points(runs)
    spread = spreads(runs)
    ref = reference if reference and reference.get("bits_per_second") is not None else None
    ref_lo, ref_hi = ((float(ref.get("min_bps", ref["bits_per_second"])),
                       float(ref.get("max_bps", ref["bits_per_second"]))) if ref else (None, None))
    highest = [bps for _, bps in pts] + [hi for _, hi in spread or []] + ([ref_hi] if ref and pts else [])
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title)
    ax.set_xlabel("buffer length (bytes, iperf3 -l)")
    factor, unit = bps_unit(max(highest, default=None))
    ax.set_ylabel(f"throughput ({unit})")
    ax.grid(True, which="major", alpha=0.3)
    if pts:
        xs = [x for x, _ in pts]
        ys = [bps / factor for _, bps in pts]
        if spread:
            lows = [y - lo / factor for y, (lo, _) in zip(ys, spread)]
            highs = [hi / factor - y for y, (_, hi) in zip(ys, spread)]
            ax.errorbar(xs, ys, yerr=[lows, highs], marker="o", linewidth=1.5, capsize=4,
                        label=f"median of {max(r.get('repeats') or 1 for r in runs)} runs (bars: lowest to highest)")
        else:
            ax.plot(xs, ys, marker="o", linewidth=1.5)
        if ref:
            ax.axhline(float(ref["bits_per_second"]) / factor, linestyle="--", color="gray", linewidth=1.2,
                       label=f"{reference_label}: {fmt_bps(ref['bits_per_second'])}")
            if ref_hi > ref_lo:
                ax.axhspan(ref_lo / factor, ref_hi / factor, color="gray", alpha=0.15)
        if spread or ref:
            ax.legend(loc="best", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(sorted(set(xs))))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(x) for x in sorted(set(xs))])
        if len(set(xs)) == 1:  # one point: a little room either side
            ax.set_xlim(xs[0] / math.sqrt(2), xs[0] * math.sqrt(2))
        ax.set_ylim(0, max(highest) / factor * 1.15 or 1)
        for (x, bps), y in zip(pts, ys):
            ax.annotate(fmt_bps(bps), (x, y), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center")
        ax.set_xticks([])
    fig.tight_layout()
    return fig


def throughput_plot(runs: list[dict], path: str, title: str, reference: dict | None = None,
                    reference_label: str = "reference") -> str:
    """Draw :func:`figure` of ``runs`` (and ``reference``) into a PNG at ``path`` (700 x 400
    pixels; the parent directory is created); returns ``path``. RuntimeError when
    matplotlib is missing."""
    fig = figure(runs, title, reference, reference_label)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png")
    return path
