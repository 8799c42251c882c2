"""Cast and iperf3 checks through the CLI: reports (verify.json, junit.xml, report.md with a
plot), a wrong expectation failing for the right reason (exit 1), and ``topo capture``."""

import json
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_throughput_report_has_table_plot_junit_and_json(topo_cli):
    first = topo_cli.json("apply", "examples/throughput.yml")
    assert first["checks"]["failed"] == 0, first["check_results"]
    sweep = [c for c in first["check_results"] if c["type"] == "iperf3"][0]
    runs = sweep["figures"]["runs"]
    assert [r["length"] for r in runs] == [200, 400, 800, 1600, 3200, 6400]
    assert all(r["bits_per_second"] > 50e6 for r in runs)
    # each length ran 3 times (the default): its median, with the lowest and highest run
    assert all(r["repeats"] == 3 and r["min_bps"] <= r["median_bps"] == r["bits_per_second"] <= r["max_bps"]
               for r in runs), runs
    ver = topo_cli.json("verify", "examples/throughput.yml")
    reports = ver["reports"]
    doc = json.load(open(reports["json"]))
    assert doc["summary"] == ver["checks"] and len(doc["checks"]) == 4
    swept = [c for c in doc["checks"] if c.get("name") == "tcp-sweep"][0]["figures"]
    assert swept["repeats"] == 3 and all({"median_bps", "min_bps", "max_bps", "repeats"} <= set(r)
                                         for r in swept["runs"])
    suite = ET.parse(reports["junit"]).getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "4" and suite.get("failures") == "0"
    assert {c.get("classname") for c in suite.iter("testcase")} == {"topo.throughput.ping", "topo.throughput.iperf3"}
    md = open(reports["markdown"]).read()
    assert "## iperf3 `tcp-sweep`" in md and "| 6400 |" in md and "throughput-tcp-sweep.png" in md
    assert "| length (B) | median | min | max | runs | retransmits |" in md
    # the reference run (the same path at iperf3's default length) is named, and on the plot
    assert "Reference: check `tcp-reference`, the same path at iperf3's default length" in md
    png = reports["plots"]["tcp-sweep"]
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    topo_cli("destroy", "examples/throughput.yml")


def test_a_wrong_expectation_fails_the_check_and_says_what_happened(topo_cli, tmp_path):
    """c1's nearest server is s1: a lab that expects s2 fails (exit 1) naming what answered,
    and junit.xml carries the failure; a multicast "member" that never joins (listed as silent
    in the real lab) would not count, which the module tests prove per check type."""
    lab = tmp_path / "casts.yml"
    text = open(os.path.join(ROOT, "examples/casts.yml")).read()
    lab.write_text(text.replace("clients: {c1: s1, c3: s3, c5: s5}", "clients: {c1: s2, c3: s3, c5: s5}")
                   .replace("  - ping: {from: [c1, c3, c5], to: all}\n", ""))
    r = topo_cli("apply", str(lab), "--json", check=False)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    doc = json.loads(r.stdout)
    bad = [c for c in doc["check_results"] if not c["ok"]]
    assert [c["name"] for c in bad] == ["nearest-server"]
    assert "s1" in bad[0]["observed"] and "c1" in bad[0]["observed"], bad[0]
    suite = ET.parse(doc["reports"]["junit"]).getroot()
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["nearest-server"]
    topo_cli("destroy", str(lab))


def test_topo_capture_summarises_what_crossed_an_interface(topo_cli):
    topo_cli("apply", "examples/mcast-groups.yml", "--no-verify")

    def traffic():
        time.sleep(1.5)
        topo_cli("exec", "examples/mcast-groups.yml", "h2", "--", "ping", "-c", "3", "-i", "0.2", "172.16.0.4",
                 check=False)

    t = threading.Thread(target=traffic)
    t.start()
    r = topo_cli.json("capture", "examples/mcast-groups.yml", "h4:eth0", "--count", "6", "--duration", "15",
                      "--filter", "icmp")
    t.join()
    assert r["packets"] == 6 and os.path.exists(r["path"])
    assert {row["protocol"] for row in r["rows"]} == {"ICMP"}
    assert {row["src"] for row in r["rows"]} == {"172.16.0.2", "172.16.0.4"}
    assert {row["kind"] for row in r["rows"]} == {"unicast"}
    bad = topo_cli("capture", "examples/mcast-groups.yml", "h4:eth9", check=False)
    assert bad.returncode == 2 and "no interface 'eth9'" in bad.stderr
    topo_cli("destroy", "examples/mcast-groups.yml")
