"""Checks whose nodes sit on different build hosts (issue 12): examples/clusters.csv placed
over the three simulated hosts so that each cluster is split across all three, verified
from the controller, which drives every participant over SSH through its build host.

The placement (``host`` column) puts node i of the file on bh1, bh2, bh3 in turn: cluster
A's master on bh1 and its 7 members on all three hosts, B's master on bh3. Beside the
example's own checks (the broadcast to all 7 members of A, the multicast with silent
listeners and a capture on a silent node, the relay from A's master through B's to B's 7
members) the lab gets a unicast over UDP and TCP, a multicast with acks, a leave and a
silent node, an iperf3 run and a capture check, each between nodes on different hosts.
One lab for every assertion (one apply: about a minute). examples/casts.yml, placed
automatically, adds anycast across hosts.
"""

from __future__ import annotations

import csv
import io
import os
import shutil

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.root

HOSTS = ("bh1", "bh2", "bh3")
#: Checks added to clusters-checks.yml, every one between nodes on different hosts
#: (a-master bh1, a-m1 bh2, a-m2 bh3, a-m3 bh1, a-m4 bh2, b-m1 bh1, b-m3 bh3;
#: the example's capture is on b-m4, bh1).
EXTRA_CHECKS = """
  - unicast: {name: udp-across, from: a-m1, to: b-m3, port: 7000, message: "over UDP, bh2 to bh3"}
  - unicast: {name: tcp-across, from: a-m1, to: b-m3, port: 7001, proto: tcp, message: "over TCP, bh2 to bh3"}
  - multicast:
      name: acks-and-leave
      from: a-master
      group: 224.2.2.2
      port: 7007
      ttl: 1
      members: [a-m1, a-m2, a-m3]
      silent: [a-m4]
      leave: [a-m3]
      ack: true
      message: "please acknowledge"
  - iperf3: {name: iperf-across, client: a-m1, server: a-m2, proto: tcp, duration: 1}
  - capture:
      on: b-m1:eth0
      ping: {from: a-m1, to: b-m1}
      expect: {layers: [IP, ICMP], min_packets: 3}
"""


def placed_clusters(directory) -> str:
    """clusters.csv with a ``host`` column (node i on HOSTS[i % 3]) and its checks file plus
    :data:`EXTRA_CHECKS`, written to ``directory``; the CSV's path."""
    text = open(os.path.join(ROOT, "examples", "clusters.csv")).read()
    comments = [ln for ln in text.splitlines() if ln.startswith("#")]
    rows = list(csv.DictReader(ln for ln in text.splitlines() if not ln.startswith("#")))
    out = io.StringIO()
    writer = csv.DictWriter(out, [*rows[0].keys(), "host"], lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(rows):
        writer.writerow({**row, "host": HOSTS[i % 3]})
    path = os.path.join(directory, "clusters.csv")
    with open(path, "w") as f:
        f.write("\n".join(comments) + "\n" + out.getvalue())
    with open(os.path.join(ROOT, "examples", "clusters-checks.yml")) as src, \
            open(os.path.join(directory, "clusters-checks.yml"), "w") as dst:
        dst.write(src.read() + EXTRA_CHECKS)
    return path


@pytest.fixture(scope="module")
def clusters(sim, tmp_path_factory):
    """The split clusters lab, applied and verified once; yields the apply result."""
    sim.give_tools()
    path = placed_clusters(str(tmp_path_factory.mktemp("clusters-split")))
    result = sim.topo_json("apply", path, "--hosts", sim.inventory["three"], check=False)
    yield {"path": path, "result": result}
    sim.topo("destroy", "--lab", "clusters", "--hosts", sim.inventory["three"], check=False)


def by_name(result) -> dict:
    return {c.get("name") or f"{c['type']}:{c.get('on')}": c for c in result["check_results"]
            if c["type"] != "ping"}


def test_each_cluster_is_split_over_the_three_hosts(sim, clusters):
    spread = {h: {n.removeprefix("topo-clusters-") for n in sim.netns_on(h) if n.startswith("topo-clusters-")}
              for h in HOSTS}
    for cluster in ("a-", "b-"):
        assert all(any(n.startswith(cluster) for n in names) for names in spread.values()), spread
    assert "a-master" in spread["bh1"] and "b-master" in spread["bh3"], spread


def test_every_check_passes_across_hosts(clusters):
    result = clusters["result"]
    rows = by_name(result)
    failed = {name: row.get("msg") for name, row in rows.items() if not row["ok"]}
    assert not failed, failed
    assert result["checks"]["failed"] == 0, [c for c in result["check_results"] if not c["ok"]][:3]
    assert {"hello-cluster-a", "hello-group-b", "a-greets-b", "udp-across", "tcp-across", "acks-and-leave",
            "iperf-across"} <= set(rows), sorted(rows)


def reached(clusters, check: str) -> list[str]:
    """The nodes that received something in check ``check``, sorted."""
    received = by_name(clusters["result"])[check]["figures"]["received"]
    return sorted(n for n, got in received.items() if got > 0)


def test_the_broadcast_reaches_all_seven_members_across_hosts(clusters):
    assert reached(clusters, "hello-cluster-a") == [f"a-m{k}" for k in range(1, 8)]


def test_multicast_members_and_silent_nodes_across_hosts(clusters):
    rows = by_name(clusters["result"])
    group = rows["hello-group-b"]["figures"]["received"]
    assert {n for n, got in group.items() if got} == {"b-m1", "b-m2", "b-m3"}, group
    assert all(group[n] == 0 for n in ("b-m4", "b-m5", "b-m6", "b-m7")), group
    acked = rows["acks-and-leave"]["figures"]
    assert acked["acks"] == acked["expected_acks"] and acked["acks"]["a-master"] > 0, acked
    assert acked["received_by_round"]["2"]["a-m3"] == 0 and acked["received_by_round"]["2"]["a-m1"] > 0, acked
    assert acked["received"]["a-m4"] == 0, acked


def test_the_relay_reaches_cluster_b_across_hosts(clusters):
    assert reached(clusters, "a-greets-b") == [f"b-m{k}" for k in range(1, 8)]


def test_unicast_and_iperf3_across_hosts(clusters):
    rows = by_name(clusters["result"])
    for name in ("udp-across", "tcp-across"):
        assert rows[name]["figures"]["intact"] >= 1, rows[name]
    runs = rows["iperf-across"]["figures"]
    assert runs, rows["iperf-across"]


def test_pcaps_come_back_to_the_controllers_lab_directory(sim, clusters):
    """The multicast check's capture on b-m4 (bh1) and the capture check on b-m1 (bh1) are
    pcaps in the controller's lab directory, read there (scapy is only on the controller)."""
    rows = clusters["result"]["check_results"]
    group = by_name(clusters["result"])["hello-group-b"]["capture"]
    assert os.path.isfile(group["path"]) and group["path"].startswith(sim.home), group
    assert group["total"] >= 1 and any(r["protocol"] == "UDP" and r["dst"] == "224.1.1.1" for r in group["rows"]), group
    capture = next(c for c in rows if c["type"] == "capture")
    assert capture["ok"] and capture["matched"] >= 3, capture
    assert os.path.isfile(capture["path"]) and capture["path"].startswith(sim.home), capture
    for host in HOSTS:  # nothing of the checks is left running on a build host
        assert "tcpdump" not in sim.on_host(host, "ps", "-eo", "comm"), host


def test_verify_again_and_destroy_leaves_nothing(sim, clusters):
    again = sim.topo_json("verify", clusters["path"], "--hosts", sim.inventory["three"], check=False)
    assert again["checks"]["failed"] == 0, [c for c in again["check_results"] if not c["ok"]][:3]
    sim.topo_json("destroy", "--lab", "clusters", "--hosts", sim.inventory["three"])
    for host in HOSTS:
        assert sim.netns_on(host) == [], host
    shutil.rmtree(os.path.dirname(clusters["path"]), ignore_errors=True)


def test_anycast_placed_automatically_over_three_hosts(sim):
    """examples/casts.yml placed automatically: its anycast servers and clients and its
    multicast senders and members land on several hosts; each client is still answered by
    the server behind its own router, and the multicast with a leave passes."""
    sim.give_tools()
    try:
        first = sim.topo_json("apply", os.path.join(ROOT, "examples", "casts.yml"), "--hosts",
                              sim.inventory["three"], check=False)
        rows = by_name(first)
        assert first["checks"]["failed"] == 0, [c for c in first["check_results"] if not c["ok"]][:3]
        assert rows["nearest-server"]["ok"] and rows["sensors"]["ok"], rows
        answers = rows["nearest-server"]["figures"]["answers"]
        assert answers == {c: {p: s for p in ("tcp", "udp")} for c, s in (("c1", "s1"), ("c3", "s3"), ("c5", "s5"))}
        on = {h: {n.removeprefix("topo-casts-") for n in sim.netns_on(h) if n.startswith("topo-casts-")} for h in HOSTS}
        servers = {h for h, names in on.items() for n in names if n[0] == "s" and n[1:].isdigit()}
        assert len(servers) >= 2, on  # the anycast check spans hosts
    finally:
        sim.topo("destroy", "--lab", "casts", "--hosts", sim.inventory["three"], check=False)
    for host in HOSTS:
        assert sim.netns_on(host) == [], host
