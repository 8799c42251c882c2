"""examples/multihost/: the leaf/spine overlay lab as users build it on two VMs, applied on
two simulated build hosts standing in for the VMs (vm1 = bh1, vm2 = bh2): every check passes
(pings, the capture of VXLAN 42 on leaf1, the tenant broadcast across the VMs, iperf3 from
h1 to h4), re-apply changes nothing, destroy leaves nothing on either host."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import ROOT
from topo.inventory import build_hosts

pytestmark = pytest.mark.root

EXAMPLE = os.path.join(ROOT, "examples", "multihost")
VMS = {"vm1": "bh1", "vm2": "bh2"}


def test_the_shipped_inventory_names_two_vms():
    hosts = build_hosts(os.path.join(EXAMPLE, "hosts.yml"))
    assert sorted(hosts) == sorted(VMS)
    assert all(v["ansible_host"] and v["ansible_user"] == "root" for v in hosts.values())


def test_overlay_on_two_vms(sim, tmp_path):
    sim.give_tools()
    inventory = tmp_path / "two-vms.yml"
    inventory.write_text(json.dumps({"all": {"children": {"topo_hosts": {"hosts": {
        vm: sim.host_vars(bh) for vm, bh in VMS.items()}}}}}))
    lab = os.path.join(EXAMPLE, "overlay.yml")
    try:
        first = sim.topo_json("apply", lab, "--hosts", str(inventory), check=False)
        bad = [c for c in first.get("check_results") or [] if not c["ok"]]
        assert first["checks"]["failed"] == 0 and not bad, bad[:3]
        kinds = {c["type"] for c in first["check_results"]}
        assert kinds == {"ping", "capture", "broadcast", "iperf3"}, kinds
        pings = {(c["from"], c.get("node")) for c in first["check_results"] if c["type"] == "ping"}
        assert {("h1", "h4"), ("h3", "h2"), ("leaf1", "tenant2")} <= pings, sorted(pings)  # across the VMs
        on = {vm: {n.removeprefix("topo-overlay-2vm-") for n in sim.netns_on(bh) if n.startswith("topo-overlay-2vm-")}
              for vm, bh in VMS.items()}
        assert on["vm2"] == {"tenant2", "h3", "h4"}, on
        assert {"spine1", "spine2", "leaf1", "leaf2", "tenant1", "h1", "h2"} <= on["vm1"], on
        capture = next(c for c in first["check_results"] if c["type"] == "capture")
        assert os.path.isfile(capture["path"]) and capture["path"].startswith(sim.home), capture
        again = sim.topo_json("apply", lab, "--hosts", str(inventory), "--no-verify")
        assert again["changes"] == [], again["changes"]
    finally:
        sim.topo("destroy", "--lab", "overlay-2vm", "--hosts", str(inventory), check=False)
    for bh in VMS.values():
        assert sim.netns_on(bh) == [], bh
        links = json.loads(sim.on_host(bh, "ip", "-j", "link"))
        assert sorted(link["ifname"] for link in links) == ["eth0", "lo"], bh
