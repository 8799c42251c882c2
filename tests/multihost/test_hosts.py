"""Several build hosts at once: doctor over three hosts, a host that does not answer before
apply (exit 3, nothing built anywhere), and destroy and list by markers on every host."""

import json
import os

import pytest

pytestmark = pytest.mark.root

LAB = os.path.join("examples", "routed.yml")
CHECKS = ("reachable", "root", "python", "kernel links", "underlay MTU", "clock")


def findings(sim, *args):
    proc = sim.topo("doctor", "--json", "--hosts", sim.inventory["three"], *args, check=False)
    return proc.returncode, {f["check"]: f for f in json.loads(proc.stdout)["findings"]}


def test_doctor_checks_every_host(sim):
    rc, found = findings(sim)
    for host in ("bh1", "bh2", "bh3"):
        for check in CHECKS:
            f = found[f"host {host}: {check}"]
            # a 1500-byte underlay cannot carry 1500-byte frames in VXLAN: said, with the fix
            assert f["status"] == ("warn" if check == "underlay MTU" else "ok"), f
    assert "192.0.2." in found["host bh1: reachable"]["detail"]
    mtu = found["host bh2: underlay MTU"]
    assert mtu["detail"] == "MTU 1500 on eth0: cross-host links get MTU 1450", mtu
    assert mtu["fix"].startswith("for 1500 across hosts: ip link set eth0 mtu 1550")
    assert found["host bh3: kernel links"]["detail"] == "veth, bridge, vxlan"
    assert found["host bh1: python"]["detail"].startswith("python3 3.")
    assert rc == (3 if any(f["status"] == "fail" for f in found.values()) else 0)


def test_doctor_names_a_stopped_host_and_its_fix(sim):
    sim.freeze("bh3")
    try:
        rc, found = findings(sim)
        table = sim.topo("doctor", "--hosts", sim.inventory["three"], check=False)
    finally:
        sim.thaw("bh3")
    assert rc == 3 and table.returncode == 3
    bad = found["host bh3: reachable"]
    assert bad["status"] == "fail" and "unreachable" in bad["detail"], bad
    assert "ssh root@192.0.2.13 true" in bad["fix"]
    assert not [k for k in found if k.startswith("host bh3: ") and k != "host bh3: reachable"]
    assert found["host bh1: reachable"]["status"] == "ok" and found["host bh2: kernel links"]["status"] == "ok"
    assert "bh3" in table.stdout and "unreachable" in table.stdout


def test_unreachable_host_before_apply_builds_nothing(sim):
    sim.freeze("bh2")
    try:
        proc = sim.topo("apply", "--json", LAB, "--hosts", sim.inventory["three"], check=False)
    finally:
        sim.thaw("bh2")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    err = json.loads(proc.stdout)
    assert "bh2" in err["message"] and "192.0.2.12" in err["message"] and "bh1" not in err["message"], err
    assert [sim.netns_on(h) for h in ("bh1", "bh2", "bh3")] == [[], [], []]
    assert not os.path.exists(os.path.join(sim.home, "labs", "routed", "inventory"))


def test_destroy_and_list_cover_every_host(sim):
    """The lab applied on bh1, then on bh2 (a second inventory): both hold it; list over the
    three hosts sees both; destroy --lab over the three removes it from both, by markers."""
    one_host_inv = {}
    for host in ("bh1", "bh2"):
        one_host_inv[host] = sim.write_inventory(f"only-{host}", [host])
    try:
        for host in ("bh1", "bh2"):
            sim.topo("apply", "--no-verify", LAB, "--hosts", one_host_inv[host])
            assert len(sim.netns_on(host)) == 8
        labs = sim.topo_json("list", "--hosts", sim.inventory["three"])["labs"]
        routed = [e for e in labs if e["lab"] == "routed"][0]
        assert routed["namespaces"] == 16 and routed["state"] == "up", routed
        # a namespace of someone else on bh3 with a look-alike name is never touched
        sim.on_host("bh3", "ip", "netns", "add", "topo-routed-h1")
        r = sim.topo_json("destroy", "--lab", "routed", "--hosts", sim.inventory["three"])
        assert r["labs"][0]["lab"] == "routed"
        assert sim.netns_on("bh1") == [] and sim.netns_on("bh2") == []
        assert sim.netns_on("bh3") == ["topo-routed-h1"]
    finally:
        sim.on_host("bh3", "sh", "-c", "ip netns del topo-routed-h1 2>/dev/null; true")
        sim.topo("destroy", "--lab", "routed", "--hosts", sim.inventory["three"], check=False)


def test_destroy_with_a_host_down_cleans_the_others_and_names_it(sim):
    sim.topo("apply", "--no-verify", LAB, "--hosts", sim.inventory["one"])
    assert len(sim.netns_on("bh1")) == 8
    sim.freeze("bh3")
    try:
        proc = sim.topo("destroy", "--json", "--lab", "routed", "--hosts", sim.inventory["three"], check=False)
    finally:
        sim.thaw("bh3")
    try:
        assert proc.returncode == 3, proc.stdout + proc.stderr
        message = json.loads(proc.stdout)["message"]
        assert "bh3" in message and "bh1" not in message.split("full log")[0], message
        assert sim.netns_on("bh1") == [] and sim.netns_on("bh2") == []
        # the lab directory stays, so the same destroy finishes the job once bh3 answers
        assert os.path.isdir(os.path.join(sim.home, "labs", "routed"))
        sim.topo("destroy", "--lab", "routed", "--hosts", sim.inventory["three"])
        assert not os.path.isdir(os.path.join(sim.home, "labs", "routed"))
    finally:
        sim.topo("destroy", "--lab", "routed", "--hosts", sim.inventory["three"], check=False)
