"""How a topo.lab module runs (plugins/plugin_utils/module_fork.py): on a local build host in
a fork of Ansible's worker; with ``topo_module_fork: false``, or where the fork does not apply,
through AnsiballZ as Ansible's normal action runs it. Both ways give the same results, the
same failures, and the module sees the task's environment."""

import os
import sys

from tests.modules.conftest import ROOT_ONLY, assert_noop, changes, links, ok, step

pytestmark = ROOT_ONLY

FORK = "topo.lab: running topo.lab.%s in a fork of the worker"
ANSIBALLZ = "topo.lab: running topo.lab.%s through AnsiballZ (%s)"
OFF = {"topo_module_fork": False}


def lab_params(lab):
    """Two namespace nodes joined by a veth, as topo.lab.lab takes them."""
    return {"lab": lab.name, "namespaces": [{"name": lab.ns("a"), "node": "a"}, {"name": lab.ns("b"), "node": "b"}],
            "veths": [{"a": {"netns": lab.ns("a"), "ifname": "e1"}, "b": {"netns": lab.ns("b"), "ifname": "e1"}}]}


def test_both_ways_plan_build_and_converge_alike(lab, ansible):
    params = lab_params(lab)
    fork, zipped = ansible.run(step("lab", params, check=True), step("lab", params, check=True, vars=OFF),
                               verbose=True)
    assert FORK % "lab" in ansible.last_output
    assert ANSIBALLZ % ("lab", "topo_module_fork is false") in ansible.last_output
    assert fork["changed"] is True and changes(fork) == changes(zipped) != []
    assert fork == zipped
    assert lab.owned_names() == []

    # built through AnsiballZ, then a no-op in the fork and a no-op check through AnsiballZ
    built, again, recheck = ansible.run(step("lab", params, vars=OFF), step("lab", params),
                                        step("lab", params, check=True, vars=OFF))
    assert changes(built) == changes(fork)
    assert_noop(again)
    assert_noop(recheck)
    assert again == recheck
    assert lab.owned_names() == [lab.ns("a"), lab.ns("b")]
    assert set(links(lab.ns("a"))) == set(links(lab.ns("b"))) == {"lo", "e1"}


def test_both_ways_fail_alike(lab, ansible):
    bad = {"lab": lab.name, "namespaces": [{"name": lab.ns("a"), "node": "a", "no_such_option": 1}]}
    fork, zipped = ansible.run(step("lab", bad), step("lab", bad, vars=OFF))
    assert fork["failed"] is True and "no_such_option" in fork["msg"]
    assert fork["msg"] == zipped["msg"]
    assert lab.owned_names() == []

    built = ok(ansible.one("lab", lab_params(lab)))
    params = {"changes": built["changes"], "nodes": [
        {"node": "a", "netns": lab.ns("a"), "kind": "netns", "commands": [["ip", "link", "set", "nosuch", "up"]]}]}
    fork, zipped = ansible.run(step("exec", params), step("exec", params, vars=OFF))
    assert fork["failed"] is True and "nosuch" in fork["msg"]
    assert fork == zipped


def test_the_task_environment_reaches_the_module(lab, ansible):
    built = ok(ansible.one("lab", lab_params(lab)))
    params = {"changes": built["changes"], "nodes": [
        {"node": "a", "netns": lab.ns("a"), "kind": "netns",
         "commands": [["sh", "-c", 'printf "%s" "$TOPO_FORK_PROBE"']]}]}
    env = {"TOPO_FORK_PROBE": "seen in the module"}
    fork, zipped = ansible.run(step("exec", params, environment=env), step("exec", params, environment=env, vars=OFF))
    assert [r["stdout"] for r in ok(fork)["ran"]] == ["seen in the module"]
    assert fork == zipped
    assert "TOPO_FORK_PROBE" not in os.environ


def test_another_interpreter_runs_through_ansiballz(lab, ansible):
    # the same interpreter under another path (a virtualenv's python3 beside its python):
    # Ansible would start that path, so the fork, which is this Python, does not stand in
    other = os.path.join(os.path.dirname(sys.executable),
                         "python3" if os.path.basename(sys.executable) != "python3" else "python")
    assert os.path.exists(other)
    params = lab_params(lab)
    res = ansible.run(step("lab", params, vars={"ansible_python_interpreter": other}), verbose=True)[0]
    assert ANSIBALLZ % ("lab", "ansible_python_interpreter is not this Python (%s)" % sys.executable) \
        in ansible.last_output
    assert FORK % "lab" not in ansible.last_output
    assert res["changed"] is True
    assert lab.owned_names() == [lab.ns("a"), lab.ns("b")]
    assert set(links(lab.ns("a"))) == {"lo", "e1"}


def test_warnings_reach_the_result_both_ways(lab, ansible, tmp_path):
    # a Docker daemon that does not answer: the lab module warns (module.warn), and the
    # warning is the task's, not a display message of the worker
    env = {"DOCKER_HOST": "unix://%s" % (tmp_path / "no-dockerd.sock")}
    params = {"lab": lab.name, "namespaces": [{"name": lab.ns("a"), "node": "a"}]}
    fork, zipped = ansible.run(step("lab", params, environment=env), step("lab", params, environment=env, vars=OFF))
    assert len(ok(fork)["warnings"]) == 1 and "no Docker daemon answers" in fork["warnings"][0]
    assert fork["warnings"] == zipped["warnings"]
