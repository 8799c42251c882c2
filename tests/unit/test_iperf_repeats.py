"""iperf3 sweeps run more than once (issue 14): the ``repeats`` key (front end and module
spec), each length's median and spread from real iperf3 JSON shapes, the observed line,
the plot's error bars and reference line, and report.md's table and reference."""

import copy

import pytest

from ansible_collections.topo.lab.plugins.module_utils._checks import iperf3, specs
from topo import report, usecases

# What iperf 3.12 (Debian 12) printed with -J on loopback (``iperf3 -c 127.0.0.1 -J -t 1 -l 400``
# and ``-u -b 10M``), cut to the members topo reads; rates and counts are set per sample.
TCP_DOC = {"start": {"test_start": {"protocol": "TCP", "num_streams": 1, "blksize": 400, "duration": 1}},
           "end": {"sum_sent": {"seconds": 1.000085, "bytes": 80848000, "bits_per_second": 646729028.0326173,
                                "retransmits": 2, "sender": True},
                   "sum_received": {"seconds": 1.000222, "bytes": 77731600,
                                    "bits_per_second": 621714779.3189912, "sender": True}}}
UDP_DOC = {"start": {"test_start": {"protocol": "UDP", "num_streams": 1, "blksize": 22016, "duration": 1,
                                    "target_bitrate": 10000000}},
           "end": {"sum": {"seconds": 1.000874, "bytes": 1254912, "bits_per_second": 10033416.417979065,
                           "jitter_ms": 0.10644585236574407, "lost_packets": 0, "packets": 57, "lost_percent": 0,
                           "sender": True},
                   "sum_received": {"seconds": 1.000874, "bytes": 1254912, "bits_per_second": 10030529.317376612,
                                    "jitter_ms": 0.10644585236574407, "lost_packets": 0, "packets": 57,
                                    "lost_percent": 0, "sender": False}}}


def tcp(bps, retransmits, length=400):
    doc = copy.deepcopy(TCP_DOC)
    doc["end"]["sum_received"]["bits_per_second"] = bps
    doc["end"]["sum_sent"]["retransmits"] = retransmits
    return iperf3.parse_client(doc, "tcp", length)


def udp(bps, jitter, lost):
    doc = copy.deepcopy(UDP_DOC)
    doc["end"]["sum_received"]["bits_per_second"] = bps
    doc["end"]["sum"].update(jitter_ms=jitter, lost_packets=lost, lost_percent=100.0 * lost / 57)
    return iperf3.parse_client(doc, "udp", None)


def test_median_and_spread_of_tcp_runs():
    run = iperf3.aggregate([tcp(6.2e8, 2), tcp(2.1e8, 40), tcp(6.5e8, 0)])  # one slow run among three
    assert run["length"] == 400
    assert run["bits_per_second"] == run["median_bps"] == 6.2e8  # the slow one does not move it
    assert (run["min_bps"], run["max_bps"], run["repeats"]) == (2.1e8, 6.5e8, 3)
    assert run["samples_bps"] == [6.2e8, 2.1e8, 6.5e8]  # in the order they ran
    assert run["retransmits"] == 2  # each figure its own median
    assert run["jitter_ms"] is None and run["lost_percent"] is None and run["packets"] is None


def test_even_count_takes_the_mean_of_the_middle_two_and_one_run_is_itself():
    run = iperf3.aggregate([tcp(4e8, 1), tcp(6e8, 3)])
    assert run["bits_per_second"] == 5e8 and run["retransmits"] == 2
    one = iperf3.aggregate([tcp(6.2e8, 2)])
    assert one["bits_per_second"] == one["min_bps"] == one["max_bps"] == 6.2e8 and one["repeats"] == 1


def test_udp_runs_keep_blksize_and_median_jitter_and_loss():
    run = iperf3.aggregate([udp(10.03e6, 0.10, 0), udp(9.5e6, 0.30, 3), udp(10.01e6, 0.12, 1)])
    assert run["length"] == 22016  # iperf3's own length (start.test_start.blksize)
    assert run["bits_per_second"] == 10.01e6 and (run["min_bps"], run["max_bps"]) == (9.5e6, 10.03e6)
    assert run["jitter_ms"] == 0.12 and run["lost_packets"] == 1 and run["packets"] == 57
    assert run["retransmits"] is None


def test_observed_and_expected_say_median_and_spread():
    run = iperf3.aggregate([tcp(6.2e8, 2), tcp(2.1e8, 40), tcp(1.05e9, 0)])
    assert iperf3.run_text(run, 400, "tcp") == "400 B: 620 Mbit/s (210 Mbit/s..1.05 Gbit/s, 3 runs)"
    assert iperf3.run_text(iperf3.aggregate([tcp(6.2e8, 2)]), 400, "tcp") == "400 B: 620 Mbit/s"
    check = {"lengths": [200, 400], "min_bps": 5e7, "repeats": 3}
    assert iperf3.expected_text(check) == ">= 50 Mbit/s at every length (200, 400 B), median of 3 runs"
    assert iperf3.expected_text(dict(check, repeats=1)) == ">= 50 Mbit/s at every length (200, 400 B)"
    assert iperf3.repeats_of({}) == iperf3.REPEATS == 3


def module_check(**over):
    c = {"type": "iperf3", "name": "t", "description": "", "address": "10.0.0.2", "proto": "tcp", "duration": 1,
         "parallel": 1, "lengths": [], "repeats": 3, "bitrate": None, "min_bps": None, "port": 5201,
         "timeout": None, "capture": None, "family": None,
         "client": {"node": "a", "netns": "x-a"}, "server": {"node": "b", "netns": "x-b"}}
    c.update(over)
    return c


def test_module_rule_refuses_repeats_out_of_range():
    assert specs.SPECS["iperf3"]["repeats"] == {"type": "int", "default": 3}
    assert specs.rules("iperf3", module_check()) == []
    for bad in (0, 21):
        assert specs.rules("iperf3", module_check(repeats=bad)) == [
            "repeats must be 1 to 20 (runs of the sweep), got %d" % bad]


def test_the_front_end_expands_repeats_default_3(tmp_path):
    lab = tmp_path / "rep.yml"
    lab.write_text("name: rep\nnodes: {h1: {}, h2: {}}\nlinks: [[h1, h2]]\nverify:\n"
                   "  - iperf3: {client: h1, server: h2, lengths: [200, 400]}\n"
                   "  - iperf3: {client: h1, server: h2, repeats: 5}\n")
    checks = [c for c in usecases.validate(str(lab)).expanded["checks"] if c["type"] == "iperf3"]
    assert [c["repeats"] for c in checks] == [3, 5]


# --------------------------------------------------------------------------- plot and report

SWEEP = [(200, 2.1e8, 2.0e8, 2.3e8), (400, 4.2e8, 3.0e8, 4.4e8), (800, 8.0e8, 7.9e8, 8.8e8)]


def repeated(length, median, low, high, n=3):
    return {"length": length, "bits_per_second": median, "median_bps": median, "min_bps": low, "max_bps": high,
            "repeats": n, "samples_bps": [median, low, high], "retransmits": 0, "jitter_ms": None,
            "lost_percent": None, "lost_packets": None, "packets": None}


REFERENCE = repeated(131072, 9.0e8, 8.5e8, 9.6e8)


def test_plot_has_error_bars_for_the_spread_and_the_reference_line():
    pytest.importorskip("matplotlib")
    from topo.plot import figure
    fig = figure([repeated(*r) for r in SWEEP], "sweep", REFERENCE, "reference tcp-reference")
    (ax,) = fig.axes
    assert ax.get_ylabel() == "throughput (Mbit/s)"
    (bars,) = ax.containers  # the errorbar container: the medians and their spread
    line, _caps, (segments,) = bars
    assert list(line.get_xdata()) == [200, 400, 800]
    assert list(line.get_ydata()) == pytest.approx([210, 420, 800])
    spans = [tuple(seg[:, 1]) for seg in segments.get_segments()]
    assert spans == [pytest.approx((lo / 1e6, hi / 1e6)) for _, _, lo, hi in SWEEP]
    ref = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(ref) == 1 and list(ref[0].get_ydata()) == pytest.approx([900, 900])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(legend) == ["median of 3 runs (bars: lowest to highest)", "reference tcp-reference: 900 Mbit/s"]
    assert ax.get_ylim()[1] == pytest.approx(960 * 1.15)  # room for the highest run of the reference


EXPANDED = {"lab": "demo", "checks": [
    {"type": "iperf3", "name": "sweep", "client": {"node": "h1"}, "server": {"node": "h2"}, "proto": "tcp",
     "lengths": [200, 400, 800], "repeats": 3},
    {"type": "iperf3", "name": "udp", "client": {"node": "h1"}, "server": {"node": "h2"}, "proto": "udp",
     "lengths": [], "repeats": 3},
    {"type": "iperf3", "name": "ref", "client": {"node": "h1"}, "server": {"node": "h2"}, "proto": "tcp",
     "lengths": [], "repeats": 3}]}


def row(name, runs):
    return {"type": "iperf3", "name": name, "from": "localhost", "description": f"iperf3 {name}", "ok": True,
            "expected": "runs", "observed": "", "details": {}, "figures": {"runs": runs}}


def test_report_pairs_the_sweep_with_its_reference_and_gives_median_min_max_runs(tmp_path):
    checks = [row("sweep", [repeated(*r) for r in SWEEP]), row("udp", [dict(REFERENCE, jitter_ms=0.1)]),
              row("ref", [REFERENCE])]
    # the UDP check has no lengths too, but another protocol: not the TCP sweep's reference
    assert report.references(checks, EXPANDED) == {"sweep": checks[2]}
    assert report.references(checks, None) == {}
    md = report.markdown("demo", "demo.yml", "now", checks, {"total": 3, "passed": 3, "failed": 0},
                         {"sweep": str(tmp_path / "throughput-sweep.png")}, str(tmp_path))
    lines = md.splitlines()
    at = lines.index("## iperf3 `sweep`")
    assert lines[at + 4:at + 9] == [
        "| length (B) | median | min | max | runs | retransmits |", "|---:|---:|---:|---:|---:|---:|",
        "| 200 | 210 Mbit/s | 200 Mbit/s | 230 Mbit/s | 3 | 0 |",
        "| 400 | 420 Mbit/s | 300 Mbit/s | 440 Mbit/s | 3 | 0 |",
        "| 800 | 800 Mbit/s | 790 Mbit/s | 880 Mbit/s | 3 | 0 |"]
    assert "Reference" not in md  # markdown() alone has no expanded lab to pair them with
    pytest.importorskip("matplotlib")
    paths = report.write("demo", str(tmp_path / "lab"), "demo.yml", checks, {"total": 3, "passed": 3, "failed": 0},
                         EXPANDED)
    text = open(paths["markdown"]).read()
    assert ("Reference: check `ref`, the same path at iperf3's default length (131072 B): 900 Mbit/s "
            "(min 850 Mbit/s, max 960 Mbit/s, 3 runs), the dashed line on the plot.") in text
    assert list(paths["plots"]) == ["sweep"]
