"""topo.lab.exec against the real kernel: a node's commands run inside it once, after the
topo.lab.lab run that created it; never again for a node that run did not create."""

from tests.modules.conftest import ROOT_ONLY, addresses, assert_noop, changes, links, ok, routes, step

pytestmark = ROOT_ONLY


def lab_params(lab):
    """Two namespace nodes joined by a veth, as topo.lab.lab takes them."""
    return {"lab": lab.name, "namespaces": [{"name": lab.ns("a"), "node": "a"}, {"name": lab.ns("b"), "node": "b"}],
            "veths": [{"a": {"netns": lab.ns("a"), "ifname": "e1"}, "b": {"netns": lab.ns("b"), "ifname": "e1"}}]}


def exec_params(lab, made):
    return {"changes": made, "nodes": [
        {"node": "a", "netns": lab.ns("a"), "kind": "netns",
         "commands": [["ip", "addr", "add", "192.0.2.1/24", "dev", "e1"], ["ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.2"]]},
        {"node": "b", "netns": lab.ns("b"), "kind": "netns",
         "commands": [["sh", "-c", "ip addr add 192.0.2.2/24 dev e1"]]}]}


def test_exec_four_steps(lab, ansible):
    built = ok(ansible.one("lab", lab_params(lab)))
    params = exec_params(lab, built["changes"])
    expected = [("create", "exec", "a"), ("create", "exec", "a"), ("create", "exec", "b")]

    # 1. check mode: reports every command, runs none
    check = ansible.one("exec", params, check=True)
    assert check["changed"] is True and changes(check) == expected
    assert check["ran"] == [] and check["fresh"] == ["a", "b"]
    assert "e1" not in addresses(lab.ns("a"))

    # 2. apply, with the lab run that created the nodes
    apply = ok(ansible.one("exec", params))
    assert changes(apply) == expected
    assert [c["detail"] for c in apply["changes"]] == [
        "ip addr add 192.0.2.1/24 dev e1", "ip route add 198.51.100.0/24 via 192.0.2.2", "sh -c 'ip addr add 192.0.2.2/24 dev e1'"]
    assert [r["rc"] for r in apply["ran"]] == [0, 0, 0]

    # 3. apply again and 4. check again, after a lab run that created nothing: nothing runs
    rebuilt = ok(ansible.one("lab", lab_params(lab)))
    assert rebuilt["changes"] == []
    again, recheck = ansible.run(step("exec", exec_params(lab, rebuilt["changes"])),
                                 step("exec", exec_params(lab, rebuilt["changes"]), check=True))
    assert_noop(again)
    assert_noop(recheck)

    # the kernel holds what the commands did, once (a second run would have failed: File exists)
    assert list(addresses(lab.ns("a"))["e1"]) == ["192.0.2.1/24"]
    assert list(addresses(lab.ns("b"))["e1"]) == ["192.0.2.2/24"]
    assert {"dst": "198.51.100.0/24", "gateway": "192.0.2.2", "dev": "e1", "protocol": "boot"} in routes(lab.ns("a"))


def test_a_failing_command_fails_naming_node_and_command_and_stops(lab, ansible):
    built = ok(ansible.one("lab", lab_params(lab)))
    params = {"changes": built["changes"], "nodes": [
        {"node": "a", "netns": lab.ns("a"), "kind": "netns",
         "commands": [["ip", "addr", "add", "192.0.2.1/24", "dev", "nosuch"], ["ip", "link", "set", "e1", "mtu", "1300"]]}]}
    res = ansible.one("exec", params)
    assert res.get("failed") is True
    assert res["msg"].startswith("exec in node a (netns %s): ip addr add 192.0.2.1/24 dev nosuch exited " % lab.ns("a"))
    assert "nosuch" in res["msg"]
    assert links(lab.ns("a"))["e1"]["mtu"] == 1500  # the command after it did not run
