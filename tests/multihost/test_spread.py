"""Labs spread over three build hosts: placement, cross-host links and segments stitched
with VXLAN, checked end to end over real SSH from the controller namespace.

routed.yml is placed automatically (its point-to-point links cross hosts); clusters.csv's
16-node LAN cannot fit one host, so its bridge is split over the hosts and joined by VXLAN
with head-end replication: every pair still pings, and a broadcast from one host reaches
members on the others. Re-apply changes nothing; destroy leaves nothing on any host.
"""

import json
import os
import time

import pytest

from tests.conftest import ROOT, root_state

pytestmark = pytest.mark.root


def hosts_of(sim, lab):
    """``{host: [node namespaces of lab]}`` read from each build host."""
    return {h: [n for n in sim.netns_on(h) if n.startswith(f"topo-{lab}-")] for h in ("bh1", "bh2", "bh3")}


@pytest.fixture(scope="module")
def routed(sim):
    before = root_state()
    start = time.monotonic()
    first = sim.topo_json("apply", os.path.join("examples", "routed.yml"), "--hosts", sim.inventory["three"])
    print(f"\nTIMING routed over three hosts: {time.monotonic() - start:.1f} s (playbook {first['seconds']} s)")
    yield {"first": first, "before": before}
    sim.topo("destroy", "--lab", "routed", "--hosts", sim.inventory["three"], check=False)


def test_routed_placed_over_hosts_passes_its_checks(sim, routed):
    first = routed["first"]
    assert first["checks"]["failed"] == 0 and first["checks"]["passed"] >= 12, first["checks"]
    spread = hosts_of(sim, "routed")
    assert sum(bool(v) for v in spread.values()) >= 2, spread  # really spread
    assert sum(len(v) for v in spread.values()) >= 8, spread
    assert {c["host"] for c in first["changes"]} >= {h for h, v in spread.items() if v}
    # the stitches' sockets live in the build hosts' own namespaces: a VXLAN UDP socket on 4789
    for host, names in spread.items():
        if names:
            assert "4789" in sim.on_host(host, "ss", "-uln"), host


def test_routed_reapply_changes_nothing_then_destroy_cleans_every_host(sim, routed):
    again = sim.topo_json("apply", os.path.join("examples", "routed.yml"), "--hosts", sim.inventory["three"])
    assert again["changes"] == [], again["changes"]
    assert again["checks"]["failed"] == 0
    sim.topo_json("destroy", "--lab", "routed", "--hosts", sim.inventory["three"])
    for host in ("bh1", "bh2", "bh3"):
        assert sim.netns_on(host) == [], host
        links = json.loads(sim.on_host(host, "ip", "-j", "link"))
        assert sorted(link["ifname"] for link in links) == ["eth0", "lo"], host
    assert root_state() == routed["before"]


def test_a_lan_split_over_three_hosts_is_one_segment(sim, tmp_path):
    """clusters.csv without its checks file: its 16 nodes on one bridge, split over the three
    hosts; every pair pings (the default checks), and a broadcast ping from a node on one host
    is answered by members on the two others."""
    text = open(os.path.join(ROOT, "examples", "clusters.csv")).read().replace(" verify=clusters-checks.yml", "")
    lab = tmp_path / "clusters.csv"
    lab.write_text(text)
    try:
        first = sim.topo_json("apply", str(lab), "--hosts", sim.inventory["three"])
        assert first["checks"]["failed"] == 0 and first["checks"]["passed"] >= 16 * 15, first["checks"]
        spread = hosts_of(sim, "clusters")
        assert all(spread.values()), spread  # members on every host
        src_host = next(h for h, v in spread.items() if "topo-clusters-a-master" in v)
        for host, names in spread.items():  # members answer broadcast pings only when asked to
            for ns in names:
                sim.on_host(host, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_broadcasts=0")
        out = sim.on_host(src_host, "ip", "netns", "exec", "topo-clusters-a-master", "ping", "-b", "-c", "2",
                          "-W", "2", "192.18.0.255")
        answered = {line.split()[3].rstrip(":") for line in out.splitlines() if "bytes from" in line}
        addresses = {n: f"192.18.0.{i}" for i, n in enumerate(
            ["a-master"] + [f"a-m{k}" for k in range(1, 8)] + ["b-master"] + [f"b-m{k}" for k in range(1, 8)], 2)}
        remote = {addresses[ns.removeprefix("topo-clusters-")] for h, v in spread.items() if h != src_host for ns in v
                  if ns.removeprefix("topo-clusters-") in addresses}
        assert remote and remote <= answered, (sorted(remote - answered), out)
        again = sim.topo_json("apply", str(lab), "--hosts", sim.inventory["three"], "--no-verify")
        assert again["changes"] == [], again["changes"]
    finally:
        sim.topo("destroy", "--lab", "clusters", "--hosts", sim.inventory["three"], check=False)
    for host in ("bh1", "bh2", "bh3"):
        assert sim.netns_on(host) == [], host
