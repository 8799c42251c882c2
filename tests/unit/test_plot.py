"""topo.plot: iperf3 throughput against buffer length - what is plotted (axes, units, the
series, the point labels, read from the matplotlib Figure) and the PNG it makes."""

import pytest

pytest.importorskip("matplotlib")

from ansible_collections.topo.lab.plugins.module_utils.api import fmt_bps  # noqa: E402
from topo.plot import figure, throughput_plot  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(length, bps, **extra):
    return dict({"length": length, "bits_per_second": bps, "retransmits": 0, "jitter_ms": None,
                 "lost_percent": None, "lost_packets": None, "packets": None}, **extra)


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5000  # axes, labels, a line: not an empty image
    # IHDR: width and height of a 7 x 4 inch figure at 100 dpi
    assert int.from_bytes(data[16:20], "big") == 700 and int.from_bytes(data[20:24], "big") == 400


def plotted(fig):
    """(axes, the one line's x data, its y data, the point labels' texts and positions)."""
    (ax,) = fig.axes
    (line,) = ax.get_lines()
    labels = [(t.get_text(), t.xy) for t in ax.texts]
    return ax, list(line.get_xdata()), list(line.get_ydata()), labels


SWEEP = [(200, 1.2e9), (400, 2.3e9), (800, 4.4e9), (1600, 8.1e9), (3200, 12.9e9), (6400, 18.9e9)]


def test_sweep_is_plotted_in_gbit_s_against_length_on_a_log2_axis():
    runs = [run(n, bps) for n, bps in reversed(SWEEP)]  # plotted in length order whatever the order given
    ax, xs, ys, labels = plotted(figure(runs, "iperf3 TCP h1 -> h2"))
    assert ax.get_title() == "iperf3 TCP h1 -> h2"
    assert ax.get_xlabel() == "buffer length (bytes, iperf3 -l)"
    assert ax.get_ylabel() == "throughput (Gbit/s)"
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert xs == [n for n, _ in SWEEP]
    assert ys == pytest.approx([bps / 1e9 for _, bps in SWEEP])
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(n) for n, _ in SWEEP]
    # each point labelled with the rate as topo prints rates everywhere, at the point
    assert labels == [(fmt_bps(bps), (n, pytest.approx(bps / 1e9))) for n, bps in SWEEP]
    assert [text for text, _ in labels] == ["1.2 Gbit/s", "2.3 Gbit/s", "4.4 Gbit/s", "8.1 Gbit/s",
                                            "12.9 Gbit/s", "18.9 Gbit/s"]
    assert ax.get_ylim() == pytest.approx((0, 18.9 * 1.15))


def test_unit_follows_the_largest_rate():
    ax, _, ys, labels = plotted(figure([run(1000, 950e6), run(2000, 400e6)], "t"))
    assert ax.get_ylabel() == "throughput (Mbit/s)"
    assert ys == pytest.approx([950, 400])
    assert [t for t, _ in labels] == ["950 Mbit/s", "400 Mbit/s"]
    ax, _, ys, labels = plotted(figure([run(64, 12.5e3)], "t"))
    assert ax.get_ylabel() == "throughput (kbit/s)"
    assert ys == pytest.approx([12.5]) and [t for t, _ in labels] == ["12.5 kbit/s"]


def test_single_point_and_failed_runs():
    runs = [run(1448, 9.99e6, jitter_ms=0.01, lost_percent=0.0), run(None, None), run(800, None)]
    ax, xs, ys, labels = plotted(figure(runs, "iperf3 UDP 10 Mbit/s"))
    assert xs == [1448] and ys == pytest.approx([9.99])
    assert [t for t, _ in labels] == ["9.99 Mbit/s"]
    lo, hi = ax.get_xlim()
    assert lo < 1448 < hi  # room either side of one point


def test_no_runs_says_so():
    fig = figure([], "iperf3: nothing ran")
    (ax,) = fig.axes
    assert ax.get_lines() == []
    assert [t.get_text() for t in ax.texts] == ["no runs"]


def test_sweep_plot_is_a_png(tmp_path):
    runs = [run(n, bps) for n, bps in SWEEP]
    path = tmp_path / "plots" / "tcp.png"  # the directory is created
    assert throughput_plot(runs, str(path), "iperf3 TCP h1 -> h2") == str(path)
    assert_png(path)


def test_no_runs_still_draws(tmp_path):
    path = tmp_path / "none.png"
    throughput_plot([], str(path), "iperf3: nothing ran")
    assert path.read_bytes()[:8] == PNG_MAGIC
