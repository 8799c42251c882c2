"""topo.plot: iperf3 throughput against buffer length, drawn into a real PNG."""

import pytest

pytest.importorskip("matplotlib")

from topo.plot import throughput_plot  # noqa: E402

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


def test_sweep_plot_is_a_png(tmp_path):
    runs = [run(n, bps) for n, bps in [(200, 1.2e9), (400, 2.3e9), (800, 4.4e9), (1600, 8.1e9),
                                       (3200, 12.9e9), (6400, 18.9e9)]]
    path = tmp_path / "plots" / "tcp.png"  # the directory is created
    assert throughput_plot(runs, str(path), "iperf3 TCP h1 -> h2") == str(path)
    assert_png(path)


def test_mbit_scale_single_point_and_failed_runs(tmp_path):
    runs = [run(1448, 9.99e6, jitter_ms=0.01, lost_percent=0.0), run(None, None)]
    path = tmp_path / "udp.png"
    assert throughput_plot(runs, str(path), "iperf3 UDP 10 Mbit/s") == str(path)
    assert_png(path)


def test_no_runs_still_draws(tmp_path):
    path = tmp_path / "none.png"
    throughput_plot([], str(path), "iperf3: nothing ran")
    assert path.read_bytes()[:8] == PNG_MAGIC
