"""containerlab topology files end to end: the clab examples (linux nodes as containers and
as namespaces, both link syntaxes, defaults and kinds, a bridge node, a VXLAN made by exec:
commands) planned, applied, pinged, re-applied with 0 changed, destroyed with nothing left;
and a failing exec: command stopping the apply with its node and command named."""

import json
import subprocess

import pytest

from tests.conftest import netns_list, root_state
from tests.e2e.test_docker import clean, lab_containers  # noqa: F401 (clean: a fixture destroying the named labs)

pytestmark = [pytest.mark.root, pytest.mark.slow]


def ip_json(netns, *args):
    """``ip -j ARGS`` inside ``netns`` (the kernel's view, read independently of topo)."""
    out = subprocess.run(["ip", "-n", netns, "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def addresses(netns, ifname):
    """The IPv4 addresses ``a.b.c.d/len`` on ``ifname`` in ``netns``."""
    return sorted(f"{a['local']}/{a['prefixlen']}" for link in ip_json(netns, "-4", "addr", "show", "dev", ifname)
                  for a in link.get("addr_info", []))


def pings(topo_cli, example, src, dst):
    """Whether ``src`` gets an answer from address ``dst`` (topo exec: inside the node)."""
    r = topo_cli("exec", example, src, "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", dst, check=False)
    return r.returncode == 0


def lifecycle(topo_cli, docker_client, example, lab, namespaces, containers, execs, ping_pairs, extra=None):
    """Plan, apply, ping, re-apply (0 changed), plan (nothing), destroy (nothing left)."""
    before = root_state()
    plan = topo_cli.json("plan", example)
    assert {c["action"] for c in plan["changes"]} == {"create"}
    planned = [c for c in plan["changes"] if c["resource"] == "exec"]
    assert len(planned) == execs, planned
    assert not [n for n in netns_list() if n.startswith(f"topo-{lab}-")], "plan must not build anything"

    first = topo_cli.json("apply", example)
    assert first["changed"] > 0
    ran = [c for c in first["changes"] if c["resource"] == "exec"]
    assert [c["detail"] for c in ran] == [c["detail"] for c in planned]
    assert sorted(n for n in netns_list() if n.startswith(f"topo-{lab}-")) == sorted(namespaces)
    assert lab_containers(docker_client, lab) == sorted(containers)
    for src, dst in ping_pairs:
        assert pings(topo_cli, example, src, dst), f"{src} cannot ping {dst}"
    if extra:
        extra()
    shown = topo_cli.json("show", example)
    states = {f"{n['node']}:{i['ifname']}": i["state"] for n in shown["nodes"] for i in n["interfaces"]}
    assert set(states.values()) == {"up"}, states  # the addresses exec: set are no drift

    again = topo_cli.json("apply", example)
    assert again["changed"] == 0, again["changes"]
    assert topo_cli.json("plan", example)["changes"] == []
    for src, dst in ping_pairs:  # the addresses exec: set survive a re-apply
        assert pings(topo_cli, example, src, dst), f"{src} cannot ping {dst} after the re-apply"

    gone = topo_cli.json("destroy", example)
    assert gone["labs"][0]["removed"]
    assert not [n for n in netns_list() if n.startswith(f"topo-{lab}-")]
    assert lab_containers(docker_client, lab) == []
    assert root_state() == before, "the root namespace must be exactly as before"


def test_veth_links_in_both_syntaxes_with_defaults_kinds_and_exec(docker_client, topo_cli, clean):
    example, lab = "examples/clab-veth.clab.yml", "clab-veth"
    clean.append(lab)
    ns = [f"topo-{lab}-n1", f"topo-{lab}-n2"]

    def extra():
        n1, n2 = ns
        assert addresses(n1, "eth1") == ["192.168.1.1/24"] and addresses(n2, "eth2") == ["192.168.2.2/24"]
        eth2 = ip_json(n1, "link", "show", "dev", "eth2")[0]
        assert eth2["mtu"] == 1400 and eth2["address"] == "02:00:00:00:01:02"  # the type: veth link's mtu, mac
        assert ip_json(n1, "link", "show", "dev", "eth1")[0]["mtu"] == 1500
        env = docker_client.containers.get(n2).attrs["Config"]["Env"]
        assert "LAB=clab-veth" in env and "ROLE=right" in env  # kinds' env merged with the node's

    warned = topo_cli("validate", example)
    assert f"{example}:5: mgmt: ignored" in warned.stderr
    lifecycle(topo_cli, docker_client, example, lab, ns, ns, 4,
              [("n1", "192.168.1.2"), ("n2", "192.168.2.1")], extra)


def test_linux_nodes_on_a_bridge(docker_client, topo_cli, clean):
    example, lab = "examples/clab-bridge.clab.yml", "clab-bridge"
    clean.append(lab)
    nodes = [f"topo-{lab}-{n}" for n in ("h1", "h2", "h3")]

    def extra():
        bridge = ip_json(f"topo-{lab}-br1", "-d", "link", "show", "dev", "br1")[0]
        assert bridge["linkinfo"]["info_kind"] == "bridge"
        ports = [link["ifname"] for link in ip_json(f"topo-{lab}-br1", "link", "show", "master", "br1")]
        assert sorted(ports) == ["h1-eth1", "h2-eth1", "h3-eth1"]
        root = [link["ifname"] for link in json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True,
                                                                        text=True, check=True).stdout)]
        assert "br1" not in root, "a containerlab bridge node is built in its own namespace, not the root one"

    lifecycle(topo_cli, docker_client, example, lab, nodes + [f"topo-{lab}-br1"], nodes, 3,
              [("h1", "10.10.0.2"), ("h2", "10.10.0.3"), ("h3", "10.10.0.1")], extra)


def test_vxlan_between_linux_nodes_run_as_namespaces(docker_client, topo_cli, clean):
    example, lab = "examples/clab-vxlan.clab.yml", "clab-vxlan"
    clean.append(lab)
    ns = [f"topo-{lab}-v1", f"topo-{lab}-v2"]

    def extra():
        dev = ip_json(ns[0], "-d", "link", "show", "dev", "vxlan100")[0]
        assert dev["linkinfo"]["info_kind"] == "vxlan" and dev["linkinfo"]["info_data"]["id"] == 100
        assert addresses(ns[1], "vxlan100") == ["192.168.100.2/24"]

    lifecycle(topo_cli, docker_client, example, lab, ns, [], 8,
              [("v1", "192.168.100.2"), ("v2", "192.168.100.1"), ("v1", "10.0.0.2")], extra)


def test_a_failing_exec_command_stops_the_apply_naming_it(topo_cli, clean, tmp_path):
    lab = "clab-execfail"
    clean.append(lab)
    f = tmp_path / "execfail.clab.yml"
    f.write_text("# topo: kind=netns\nname: clab-execfail\ntopology:\n  nodes:\n    a:\n      kind: linux\n"
                 "      exec:\n        - ip addr add 10.9.0.1/24 dev nosuchif\n        - touch /tmp/never\n")
    r = topo_cli("apply", str(f), "--no-verify", check=False)
    assert r.returncode != 0
    assert "node a (netns topo-clab-execfail-a)" in r.stderr + r.stdout
    assert "ip addr add 10.9.0.1/24 dev nosuchif" in r.stderr + r.stdout
    topo_cli("destroy", "--lab", lab)
    assert not [n for n in netns_list() if n.startswith(f"topo-{lab}-")]
