"""All modules in the order the apply playbook runs them, on a lab that does not exist yet.

Check mode must predict the whole build even though each module depends on objects
an earlier module would make (namespaces, bridges, interfaces); the build must then
do exactly what was predicted, be idempotent, and forward traffic h1 -> r1 -> h2.
"""

from tests.modules.conftest import (
    ROOT_ONLY, addresses, assert_noop, changes, links, ok, step, sysctl, topo_routes,
    veth_peer,
)

pytestmark = ROOT_ONLY

ORDER = ("netns", "bridge", "veth", "address", "route")


def declare(lab):
    h1, h2, r1, lan = (lab.ns(n) for n in ("h1", "h2", "r1", "lan"))
    names = [h1, h2, r1, lan]
    return {
        "netns": {"lab": lab.name, "namespaces": [
            {"name": h1, "node": "h1"}, {"name": h2, "node": "h2"},
            {"name": r1, "node": "r1", "sysctls": {"net.ipv4.ip_forward": 1}},
            {"name": lan, "node": "lan"}]},
        "bridge": {"lab": lab.name, "namespaces": names,
                   "bridges": [{"netns": lan, "name": "br0"}]},
        "veth": {"lab": lab.name, "namespaces": names, "veths": [
            {"a": {"netns": h1, "ifname": "eth0"},
             "b": {"netns": lan, "ifname": "h1-eth0", "master": "br0"}},
            {"a": {"netns": r1, "ifname": "eth0"},
             "b": {"netns": lan, "ifname": "r1-eth0", "master": "br0"}},
            {"a": {"netns": r1, "ifname": "eth1"}, "b": {"netns": h2, "ifname": "eth0"}}]},
        "address": {"lab": lab.name, "interfaces": [
            {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.1/24"]},
            {"netns": r1, "ifname": "eth0", "addresses": ["10.1.0.254/24"]},
            {"netns": r1, "ifname": "eth1", "addresses": ["10.2.0.254/24"]},
            {"netns": h2, "ifname": "eth0", "addresses": ["10.2.0.1/24"]}]},
        "route": {"lab": lab.name, "namespaces": names, "routes": [
            {"netns": h1, "routes": [{"dst": "0.0.0.0/0", "gateway": "10.1.0.254"}]},
            {"netns": h2, "routes": [{"dst": "0.0.0.0/0", "gateway": "10.2.0.254"}]}]},
    }


def test_lab_check_predicts_build_then_build_is_idempotent(lab, ansible):
    params = declare(lab)
    h1, h2, r1, lan = (lab.ns(n) for n in ("h1", "h2", "r1", "lan"))

    predicted = ansible.run(*(step(m, params[m], check=True) for m in ORDER))
    assert lab.owned_names() == []
    expected = {
        "netns": sorted(("create", "netns", n) for n in (h1, h2, r1, lan)),
        "bridge": [("create", "bridge", "%s/br0" % lan)],
        "veth": sorted([("create", "veth", "%s/eth0 <-> %s/h1-eth0" % (h1, lan)),
                        ("create", "veth", "%s/eth0 <-> %s/r1-eth0" % (r1, lan)),
                        ("create", "veth", "%s/eth1 <-> %s/eth0" % (r1, h2))]),
        "address": sorted([("create", "address", "%s/eth0" % h1),
                           ("create", "address", "%s/eth0" % r1),
                           ("create", "address", "%s/eth1" % r1),
                           ("create", "address", "%s/eth0" % h2)]),
        "route": sorted([("create", "route", "%s 0.0.0.0/0" % h1),
                         ("create", "route", "%s 0.0.0.0/0" % h2)]),
    }
    for module, res in zip(ORDER, predicted):
        assert changes(res) == expected[module], module

    ping = {"count": 2, "interval": 0.2, "timeout": 1, "targets": [
        {"address": "10.1.0.254", "node": "r1"}, {"address": "10.2.0.1", "node": "h2"}]}
    results = ansible.run(*[step(m, params[m]) for m in ORDER],
                          *[step(m, params[m]) for m in ORDER],
                          step("ping", ping, netns=h1))
    applied, again, pinged = results[:5], results[5:10], results[10]
    for module, res in zip(ORDER, applied):
        assert changes(res) == expected[module], module
    for res in again:
        assert_noop(res)
    ok(pinged)
    assert [r["observed"] for r in pinged["results"]] == ["pass", "pass"]

    assert lab.owned_names() == sorted([h1, h2, lan, r1])
    assert sysctl(r1, "net.ipv4.ip_forward") == "1"
    assert links(lan)["h1-eth0"]["master"] == "br0" and links(lan)["r1-eth0"]["master"] == "br0"
    assert veth_peer(r1, "eth1") == (h2, "eth0")
    assert addresses(h2)["eth0"] == {"10.2.0.1/24": "10.2.0.255"}
    assert topo_routes(h1) == {"0.0.0.0/0": "10.1.0.254"}


def lab_params(params):
    """The same lab as one topo.lab.lab call (what the apply playbook runs)."""
    return {"lab": params["netns"]["lab"], "namespaces": params["netns"]["namespaces"],
            "bridges": params["bridge"]["bridges"], "veths": params["veth"]["veths"],
            "addresses": params["address"]["interfaces"], "routes": params["route"]["routes"]}


def test_lab_module_four_steps_and_same_changes_as_the_five(lab, ansible):
    """topo.lab.lab = the five modules in one process: check, apply, apply, check."""
    params = declare(lab)
    whole = lab_params(params)
    h1, h2, r1, lan = (lab.ns(n) for n in ("h1", "h2", "r1", "lan"))
    check1, apply1, apply2, check2 = ansible.run(step("lab", whole, check=True), step("lab", whole),
                                                 step("lab", whole), step("lab", whole, check=True))
    assert check1["changed"] is True and apply1["changed"] is True
    assert changes(check1) == changes(apply1)
    assert check1["summary"] == {"container": 0, "netns": 4, "bridge": 1, "veth": 3, "tunnel": 0, "impair": 0, "address": 4, "route": 2}
    assert_noop(apply2)
    assert_noop(check2)
    assert veth_peer(h1, "eth0") == (lan, "h1-eth0")
    assert links(lan)["r1-eth0"]["master"] == "br0"
    assert addresses(r1)["eth1"] == {"10.2.0.254/24": "10.2.0.255"}
    assert topo_routes(h2) == {"0.0.0.0/0": "10.2.0.254"}
