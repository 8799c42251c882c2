"""Multicast on the wire (issue 14 item 4), through the CLI on real bridges: ``wire: clean``
passes on a snooping bridge with a querier (IPv4/IGMP and IPv6/MLD), fails naming the
silent nodes when the bridge floods (its querier switched off behind topo's back), passes
again once ``topo apply`` switched the querier back on (the check waiting for it to take
over); and the clusters report explains the datagram flooded to a silent node."""

import os
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _check(doc, name):
    return next(c for c in doc["check_results"] if c.get("name") == name)


def _querier(netns, bridge):
    out = subprocess.run(["ip", "-n", netns, "-d", "-j", "link", "show", bridge], capture_output=True,
                         text=True, check=True).stdout
    import json
    return json.loads(out)[0]["linkinfo"]["info_data"]["mcast_querier"]


def test_wire_clean_passes_with_a_querier_and_fails_naming_the_node_when_the_bridge_floods(topo_cli):
    lab = "examples/mcast-clean.yml"
    first = topo_cli.json("apply", lab)
    assert first["checks"]["failed"] == 0, [c for c in first["check_results"] if not c["ok"]]
    c = _check(first, "clean-224-1-1-5")
    assert c["figures"]["wire"] == {"h4": 0, "h5": 0}, c
    assert c["figures"]["received"]["h4"] == 0 and c["figures"]["received"]["h2"] == 1
    assert c["figures"]["wire_waited"] <= c["figures"]["wire_settle"] + 5
    assert "the silent nodes' wires stayed clean (h4, h5)" in c["observed"]
    assert c["details"]["h4"]["silent"]["wire"]["interfaces"] == ["eth0"]

    # the bridge floods once its querier is gone: the wires of h4 and h5 carry the group
    subprocess.run(["ip", "-n", "topo-mcast-clean-lan", "link", "set", "lan", "type", "bridge", "mcast_querier", "0"],
                   check=True)
    r = topo_cli("verify", lab, "--json", check=False)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    import json
    doc = json.loads(r.stdout)
    bad = _check(doc, "clean-224-1-1-5")
    assert not bad["ok"]
    assert bad["figures"]["received"]["h4"] == 0 and bad["figures"]["received"]["h5"] == 0, "flooded, not delivered"
    assert bad["figures"]["wire"]["h4"] >= 1 and bad["figures"]["wire"]["h5"] >= 1, bad["figures"]
    assert bad["figures"]["wire_attempts"] >= 2 and bad["figures"]["wire_waited"] > bad["figures"]["wire_settle"] - 1
    assert "h4 (silent) 1 datagram to 224.1.1.5:50001 reached its wire (eth0)" in bad["msg"], bad["msg"]
    assert "h5 (silent) 1 datagram to 224.1.1.5:50001 reached its wire (eth0)" in bad["msg"], bad["msg"]
    md = open(doc["reports"]["markdown"]).read()
    assert "## Multicast `clean-224-1-1-5`: the silent nodes" in md
    assert "| h4 | 0 | 1 (eth0) | not delivered: h4 did not join 224.1.1.5" in md

    # apply switches the querier back on; the check waits for it to take over (10 s) and passes
    again = topo_cli.json("apply", lab)
    assert _querier("topo-mcast-clean-lan", "lan") == 1
    c = _check(again, "clean-224-1-1-5")
    assert c["ok"], c.get("msg")
    assert c["figures"]["wire"] == {"h4": 0, "h5": 0}
    topo_cli("destroy", lab)


def test_wire_clean_over_ipv6_with_mld_snooping(topo_cli):
    lab = "examples/mcast6-clean.yml"
    first = topo_cli.json("apply", lab)
    assert first["checks"]["failed"] == 0, [c for c in first["check_results"] if not c["ok"]]
    c = _check(first, "clean-ff0e-5")
    assert c["figures"]["wire"] == {"h4": 0, "h5": 0} and c["figures"]["received"]["h3"] == 1, c["figures"]
    topo_cli("destroy", lab)


def test_clusters_report_explains_the_datagram_flooded_to_a_silent_node(topo_cli, tmp_path):
    """The clusters lab (its bridge without a querier), without the 240 pings: the capture on
    b-m4 shows the datagram to 224.1.1.1, its sockets got nothing, and report.md says why."""
    lab = tmp_path / "clusters.yml"
    text = open(os.path.join(ROOT, "examples/clusters.yml")).read()
    assert "  - ping: all\n" in text
    lab.write_text(text.replace("  - ping: all\n", ""))
    doc = topo_cli.json("apply", str(lab))
    assert doc["checks"]["failed"] == 0, [c for c in doc["check_results"] if not c["ok"]]
    c = _check(doc, "hello-group-b")
    assert c["figures"]["wire"] == {"b-m4": 1} and c["figures"]["received"]["b-m4"] == 0, c["figures"]
    assert "no silent node got anything" in c["observed"]
    assert "on the silent nodes' wires: b-m4 1 datagram of the group" in c["observed"]
    why = c["details"]["b-m4"]["silent"]["wire"]["why"]
    assert why.startswith("not delivered: b-m4 did not join 224.1.1.1, so its kernel dropped it"), why
    md = open(doc["reports"]["markdown"]).read()
    assert "## Multicast `hello-group-b`: the silent nodes" in md
    assert ("| b-m4 | 0 | 1 (eth0) | not delivered: b-m4 did not join 224.1.1.1, so its kernel dropped it; "
            "on the wire because bridge lan snoops IGMP but has no querier") in md, md
    assert "no socket of the node joined the group" in md
    topo_cli("destroy", str(lab))
