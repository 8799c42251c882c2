"""topo.report: verify.json, junit.xml and report.md written from a fixed list of check rows."""

import json
import os
import xml.etree.ElementTree as ET

import pytest

from topo import report
from topo.results import summary

PINGS = [
    {"type": "ping", "from": "h1", "node": "h2", "address": "10.0.0.2", "expect": "pass", "observed": "pass",
     "ok": True, "rtt_ms": 0.1, "sent": 3, "received": 3},
    {"type": "ping", "from": "h1", "node": "h3", "address": "10.0.0.3", "expect": "pass", "observed": "pass",
     "ok": True, "rtt_ms": 0.3, "sent": 3, "received": 3},
    {"type": "ping", "from": "h2", "node": "h3", "address": "10.0.1.3", "expect": "fail", "observed": "pass",
     "ok": False, "rtt_ms": 0.2, "sent": 3, "received": 3},
]
CAPTURE = {"type": "capture", "from": "localhost", "on": "r1:eth0", "description": "h1 pings h2 over vxlan",
           "expect": {"layers": ["Ether", "IP", "UDP", "VXLAN"], "vni": 42}, "ok": True, "matched": 3, "total": 4,
           "seen": "3 x Ether/IP/UDP/VXLAN (vni 42)", "path": "/l/captures/r1.pcap",
           "rows": [{"time": 0.0015, "src": "192.168.0.1", "dst": "192.168.0.2", "protocol": "UDP", "length": 148,
                     "kind": "unicast", "vni": 42}]}
CAST = {"type": "multicast", "name": "mc-1", "from": "localhost", "description": "h1 -> 239.1.1.1",
        "expected": "h2 receives | h3 does not", "observed": "h2 received 3, h3 received 3", "ok": False,
        "figures": {"seconds": 1.25}, "details": {}, "msg": "h3 received 3 datagrams"}
IPERF = {"type": "iperf3", "name": "tcp", "from": "localhost", "description": "h1 -> h2, TCP", "ok": True,
         "expected": "at least 1 Gbit/s", "observed": "median 4.4 Gbit/s", "details": {},
         "figures": {"runs": [{"length": 400, "bits_per_second": 2.3e9, "retransmits": 0},
                              {"length": 800, "bits_per_second": 4.4e9, "retransmits": 2}]}}
CHECKS = PINGS + [CAPTURE, CAST, IPERF]


@pytest.fixture
def written(tmp_path):
    directory = tmp_path / "labs" / "demo"  # created
    paths = report.write("demo", str(directory), "examples/demo.yml", CHECKS, summary(CHECKS))
    return directory, paths


def test_paths(written):
    directory, paths = written
    assert paths["json"] == str(directory / "verify.json")
    assert paths["junit"] == str(directory / "junit.xml")
    assert paths["markdown"] == str(directory / "report.md")
    pytest.importorskip("matplotlib")
    assert paths["plots"] == {"tcp": str(directory / "throughput-tcp.png")}
    assert (directory / "throughput-tcp.png").read_bytes()[:4] == b"\x89PNG"


def test_verify_json(written):
    directory, paths = written
    doc = json.loads((directory / "verify.json").read_text())
    assert doc["lab"] == "demo" and doc["file"] == "examples/demo.yml" and doc["when"]
    assert doc["summary"] == {"total": 6, "passed": 4, "failed": 2}
    assert doc["checks"] == CHECKS
    assert doc["plots"] == paths["plots"]


def test_junit(written):
    directory, _ = written
    suite = ET.parse(directory / "junit.xml").getroot()
    assert suite.tag == "testsuite"
    assert suite.attrib == {"name": "topo.demo", "tests": "6", "failures": "2", "errors": "0", "skipped": "0"}
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("topo.demo.ping", "h1 -> h2 10.0.0.2"), ("topo.demo.ping", "h1 -> h3 10.0.0.3"),
        ("topo.demo.ping", "h2 -> h3 10.0.1.3"), ("topo.demo.capture", "r1:eth0 (h1 pings h2 over vxlan)"),
        ("topo.demo.multicast", "mc-1"), ("topo.demo.iperf3", "tcp")]
    assert [c.find("failure") is not None for c in cases] == [False, False, True, False, True, False]
    ping_fail = cases[2].find("failure")
    assert ping_fail.get("message") == "expected ping fail, observed ping pass, rtt 0.200 ms"
    assert ping_fail.text == "expected: ping fail\nobserved: ping pass, rtt 0.200 ms\n"
    cast_fail = cases[4].find("failure")
    assert cast_fail.get("message") == "h3 received 3 datagrams"
    assert cases[4].get("time") == "1.250"
    assert cases[3].find("system-out").text == ("h1 pings h2 over vxlan\nexpected: Ether / IP / UDP / VXLAN, vni 42\n"
                                                "observed: 3/4 packets matched; 3 x Ether/IP/UDP/VXLAN (vni 42)\n")


def test_markdown(written):
    directory, paths = written
    text = (directory / "report.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "# Verification of lab `demo`"
    assert lines[2].startswith("From `examples/demo.yml`, ") and lines[2].endswith(
        ": **4/6 checks passed**, 2 failed.")
    assert "## Lab" not in text  # no diagram in the directory
    ping = lines.index("## Ping")
    assert lines[ping + 2:ping + 6] == [
        "| from | targets | passed | avg rtt ms | failed |", "|---|---:|---:|---:|---|",
        "| h1 | 2 | 2 | 0.200 |  |",
        "| h2 | 1 | 0 | 0.200 | h3 10.0.1.3 (expected fail, got pass) |"]
    checks = lines.index("## Checks")
    assert lines[checks + 4:checks + 7] == [
        "| r1:eth0 (h1 pings h2 over vxlan) | capture | Ether / IP / UDP / VXLAN, vni 42 | "
        "3/4 packets matched; 3 x Ether/IP/UDP/VXLAN (vni 42) | pass |",
        "| mc-1 | multicast | h2 receives \\| h3 does not | h2 received 3, h3 received 3 | **FAIL** |",
        "| tcp | iperf3 | at least 1 Gbit/s | median 4.4 Gbit/s | pass |"]
    iperf = lines.index("## iperf3 `tcp`")
    assert lines[iperf + 2] == "h1 -> h2, TCP"
    # rates as topo prints them everywhere (api.fmt_bps)
    assert lines[iperf + 4:iperf + 8] == ["| length (B) | throughput | retransmits |", "|---:|---:|---:|",
                                          "| 400 | 2.3 Gbit/s | 0 |", "| 800 | 4.4 Gbit/s | 2 |"]
    if paths["plots"]:
        assert "![throughput against buffer length](throughput-tcp.png)" in lines
    cap = lines.index("## capture on r1:eth0 (h1 pings h2 over vxlan)")
    # what "3/4" counts, said in the report itself
    assert lines[cap + 2] == ("**3 of the 4 packets captured on r1:eth0 matched.** A packet matches when its layers "
                              "include Ether / IP / UDP / VXLAN in that order; its VNI is 42. The check needs at "
                              "least 1 matching packet.")
    assert lines[cap + 6] == "| 0.002 | 192.168.0.1 | 192.168.0.2 | UDP | 148 | unicast | 42 |"


def test_tunnelled_packets_show_inner_addresses_and_why_replies_do_not_count(tmp_path):
    """A capture of tunnelled traffic: inner source and destination beside the outer ones, and
    the sentence naming the traffic's own inner addresses as the criterion."""
    row = CAPTURE["rows"][0] | {"layers": ["Ether", "IP", "UDP", "VXLAN", "Ether", "IP", "ICMP"],
                                "protocol": "ICMP", "inner_src": "10.0.0.1", "inner_dst": "10.0.0.2"}
    reply = row | {"time": 0.0021, "src": "192.168.0.2", "dst": "192.168.0.1",
                   "inner_src": "10.0.0.2", "inner_dst": "10.0.0.1"}
    cap = CAPTURE | {"expect": {"layers": ["VXLAN", "ICMP"], "vni": 42, "inner_src": "10.0.0.1",
                                "inner_dst": "10.0.0.2", "min_packets": 3},
                     "matched": 3, "total": 6, "rows": [row, reply]}
    lines = report.markdown("demo", "f.yml", "now", [cap], summary([cap]), {}, str(tmp_path)).splitlines()
    at = lines.index("## capture on r1:eth0 (h1 pings h2 over vxlan)")
    assert lines[at + 2] == ("**3 of the 6 packets captured on r1:eth0 matched.** A packet matches when its layers "
                             "include VXLAN / ICMP in that order; its VNI is 42; its innermost source and destination "
                             "are 10.0.0.1 and 10.0.0.2, the traffic's own (so the replies and other traffic on the "
                             "same wire do not count). The check needs at least 3 matching packets.")
    assert lines[at + 4] == "| time s | src | dst | inner src | inner dst | protocol | length | kind | VNI / GRE key |"
    assert lines[at + 6:at + 8] == [
        "| 0.002 | 192.168.0.1 | 192.168.0.2 | 10.0.0.1 | 10.0.0.2 | ICMP | 148 | unicast | 42 |",
        "| 0.002 | 192.168.0.2 | 192.168.0.1 | 10.0.0.2 | 10.0.0.1 | ICMP | 148 | unicast | 42 |"]


def test_without_the_expanded_lab_there_is_no_lab_section(tmp_path):
    text = report.markdown("demo", "f.yml", "now", PINGS[:1], summary(PINGS[:1]), {}, str(tmp_path))
    assert "## The lab" not in text and "Address plan" not in text
    assert "**1/1 checks passed**." in text


def test_report_starts_with_the_labs_picture_and_address_plan(tmp_path):
    """report.md shows the lab before the results: lab.png beside it (a real PNG of the
    lab's size) and one address-plan row per interface, then the checks."""
    import shutil

    from tests.conftest import ROOT
    from topo.pipeline import compile_file
    expanded = compile_file(f"{ROOT}/examples/routed.yml").expanded
    paths = report.write("routed", str(tmp_path), "examples/routed.yml", PINGS, summary(PINGS), expanded)
    text = (tmp_path / "report.md").read_text()
    if shutil.which("dot"):
        assert paths["picture"] == str(tmp_path / "lab.png")
        png = (tmp_path / "lab.png").read_bytes()
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and width > 200 and height > 100
        assert "![lab routed](lab.png)" in text
    else:
        assert paths["picture"] is None and "apt-get install graphviz" in text
    plan = text[text.index("### Address plan"):text.index("## Ping")]
    rows = [line for line in plan.splitlines() if line.startswith("| ") and not line.startswith("| node")]
    ifaces = [(n, i["ifname"]) for n, node in expanded["nodes"].items() for i in node["interfaces"]]
    assert len(rows) == len(ifaces)
    assert "| h1 | eth0 | 172.16.0.1/24 | lan1 |" in plan
    assert text.index("## The lab") < text.index("### Address plan") < text.index("## Ping")


def test_a_dual_stack_labs_address_plan_has_an_ipv6_column(tmp_path):
    from tests.conftest import ROOT
    from topo.pipeline import compile_file
    expanded = compile_file(f"{ROOT}/examples/dualstack.yml").expanded
    lines = report.markdown("dualstack", "f.yml", "now", PINGS[:1], summary(PINGS[:1]), {}, str(tmp_path),
                            expanded=expanded).splitlines()
    at = lines.index("### Address plan")
    assert lines[at + 2] == "| node | interface | IPv4 address | IPv6 address | segment | peer |"
    rows = [line.split(" | ") for line in lines[at + 4:lines.index("", at + 4)]]
    iface = expanded["nodes"]["h1"]["interfaces"][0]
    assert ["| h1", iface["ifname"], iface["address"], iface["address6"]] == rows[0][:4]
    assert all(":" in r[3] for r in rows if r[1] != "lo")


def test_the_labs_picture_is_drawn_again_only_when_the_lab_changed(tmp_path, monkeypatch):
    """lab.png is kept while the lab's DOT source equals lab.dot beside it; another lab
    (or a changed one) is drawn anew."""
    import shutil

    import pytest

    from tests.conftest import ROOT
    from topo import graph
    from topo.pipeline import compile_file
    if not shutil.which("dot"):
        pytest.skip("Graphviz's dot is missing")
    routed = compile_file(f"{ROOT}/examples/routed.yml").expanded
    first = report.write("routed", str(tmp_path), "f.yml", PINGS, summary(PINGS), routed)["picture"]
    png = (tmp_path / "lab.png").read_bytes()
    assert (tmp_path / "lab.dot").read_text() == graph.dot_source(routed)
    drawn = []
    real = graph.render
    monkeypatch.setattr(graph, "render", lambda expanded, path: drawn.append(path) or real(expanded, path))
    assert report.write("routed", str(tmp_path), "f.yml", PINGS, summary(PINGS), routed)["picture"] == first
    assert drawn == [] and (tmp_path / "lab.png").read_bytes() == png
    other = compile_file(f"{ROOT}/examples/dualstack.yml").expanded
    assert report.write("dualstack", str(tmp_path), "f.yml", PINGS, summary(PINGS), other)["picture"] == first
    assert drawn == [first] and (tmp_path / "lab.dot").read_text() == graph.dot_source(other)
    assert (tmp_path / "lab.png").read_bytes() != png


def test_verify_json_holds_one_check_row_a_line(written):
    directory, _ = written
    lines = (directory / "verify.json").read_text().splitlines()
    rows = [json.loads(line.strip().rstrip(",")) for line in lines if line.startswith("  {")]
    assert rows == CHECKS


def test_the_picture_drawn_in_a_thread_is_the_one_write_would_draw(tmp_path, monkeypatch):
    """report.draw runs _picture in a thread; write(drawing=) takes its path, or its error."""
    monkeypatch.setattr(report, "_picture", lambda expanded, directory: os.path.join(directory, "lab.png"))
    paths = report.write("demo", str(tmp_path), "f.yml", PINGS, summary(PINGS),
                         drawing=report.draw({"lab": "demo"}, str(tmp_path)))
    assert paths["picture"] == str(tmp_path / "lab.png")

    def broken(expanded, directory):
        raise OSError("disk full")
    monkeypatch.setattr(report, "_picture", broken)
    wait = report.draw({"lab": "demo"}, str(tmp_path))
    with pytest.raises(OSError, match="disk full"):
        wait()
