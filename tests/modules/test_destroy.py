"""topo destroy's removal against the real kernel, both ways it runs: in the CLI's process
(this machine the only build host: the collection's ``remove_lab``) and through the destroy
playbook (``topo.lab.lab`` with ``state: absent``, as with ``--hosts``). Both must remove
exactly the namespaces carrying the lab's marker - whatever their names - and nothing else,
and report the same."""

import os
import time

import pytest

from tests.conftest import ROOT
from tests.modules.conftest import ROOT_ONLY, links, lo_alias, netns_exists
from topo import labdir, usecases

pytestmark = ROOT_ONLY

LOCAL_HOSTS = os.path.join(ROOT, "inventories", "localhost.yml")


def wait_gone(ns, ifname, timeout=20.0):
    """True once ``ifname`` is gone from ``ns``: the kernel frees a deleted namespace (and
    with it the peers of its veths) later, from a work queue."""
    deadline = time.monotonic() + timeout
    while ifname in links(ns):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize("how", ["in_process", "playbook"])
def test_destroy_removes_by_marker_only(lab, tmp_path, monkeypatch, how):
    monkeypatch.setenv("TOPO_HOME", str(tmp_path / "home"))
    if how == "in_process":
        import topo.runner

        def no_playbook(*args, **kwargs):
            raise AssertionError("this machine alone: destroy must not start ansible-playbook")
        monkeypatch.setattr(topo.runner, "run_playbook", no_playbook)
    hosts = LOCAL_HOSTS if how == "playbook" else None

    # the lab's own: a node, a bridge namespace, one renamed by hand (the marker decides)
    h1, lan = lab.make_ns("h1"), lab.make_ns("lan")
    r1 = lab.make_ns("r1", name="renamed-%s-r1" % lab.name)
    lab.make_bridge(lan, "lan")
    lab.make_veth(h1, "eth0", lan, "h1-eth0")
    # not the lab's: no alias, another lab's marker under the lab's prefix, a lookalike
    # marker, and the lab's interface marker on lo (not a namespace marker)
    bare = lab.make_ns("x", alias=None)
    other = lab.make_ns("z", alias="topo:%sz:z" % lab.name, name="topo-%sz-z" % lab.name)
    lookalike = lab.make_ns("y", alias="topo:%sy:y" % lab.name)
    ifmark = lab.make_ns("w", alias=lab.if_marker)
    # a veth of the lab's node whose peer sits in the namespace topo does not own, beside
    # a bridge of that namespace's own
    lab.make_veth(h1, "eth1", bare, "peer0")
    lab.make_bridge(bare, "own0", alias=None)
    labdir.prepare(lab.name)

    r = usecases.destroy(lab.name, hosts=hosts)
    assert sorted(r.removed) == ["netns"]
    assert r.removed["netns"] == sorted([h1, lan, r1])
    assert r.warnings == []
    for name in (h1, lan, r1):
        assert not netns_exists(name), name
    for name, alias in ((bare, None), (other, "topo:%sz:z" % lab.name), (lookalike, "topo:%sy:y" % lab.name),
                        (ifmark, lab.if_marker)):
        assert netns_exists(name), name
        assert lo_alias(name) == alias
        assert links(name)["lo"]["up"] is True
    # the foreign namespace keeps its own bridge; the veth end in it goes with its pair
    assert wait_gone(bare, "peer0"), "the peer of a removed namespace's veth outlived it"
    assert sorted(links(bare)) == ["lo", "own0"]
    assert not os.path.exists(labdir.lab_dir(lab.name))

    again = usecases.destroy(lab.name, hosts=hosts)
    assert again.removed == {} and again.warnings == []


def test_no_dockerd_warning_reaches_the_result_through_module_warn(lab, ansible, tmp_path, monkeypatch):
    # DOCKER_HOST names a socket nobody listens on: the lab module cannot ask for the lab's
    # containers and says so as a warning of the task (AnsibleModule.warn), not as a
    # `warnings` argument of exit_json, which ansible-core 2.19 reports as deprecated
    monkeypatch.setenv("DOCKER_HOST", "unix://%s" % (tmp_path / "closed.sock"))
    h1 = lab.make_ns("h1")
    r = ansible.one("lab", {"lab": lab.name, "state": "absent"})
    assert not r.get("failed"), r
    assert [c["name"] for c in r["changes"]] == [h1] and not netns_exists(h1)
    assert [w for w in r.get("warnings", []) if "no Docker daemon answers" in str(w)] == [
        "no Docker daemon answers, so containers of lab %s (if it has any) were not looked for; "
        "start dockerd and run this again" % lab.name], r.get("warnings")
    assert "DEPRECATION" not in ansible.last_output, ansible.last_output
