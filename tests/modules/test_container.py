"""topo.lab.container against a real dockerd: containers made with the Docker SDK (network
none, NET_ADMIN/NET_RAW, init, labels), their namespaces named under /run/netns, drift
(stopped, removed, settings changed, namespace not named), prune, absent, ownership, a
missing image.

Everything is read back independently of the module: the container through the Docker SDK
(``docker inspect``), the namespace through iproute2 and /proc (``stat -L`` of
/run/netns/NAME against ``readlink /proc/PID/ns/net``), and from inside the container
(``docker exec``).

Each test's containers are named ``topo-<lab>-<node>`` with its own ``tm<hex>`` lab; the
``docker_lab`` fixture removes every container labelled ``topo.lab=<lab>`` or named
``topo-<lab>-*`` (hand-made look-alikes included), and the ``lab`` fixture then deletes
the namespaces named ``topo-<lab>-*``.
"""

import json
import secrets

import pytest

from tests.conftest import NODE_IMAGE
from tests.modules.conftest import ROOT_ONLY, assert_noop, changes, detail, lo_alias, ok, sh, step

pytestmark = ROOT_ONLY


class DockerLab:
    """The test's view of one lab's containers, read with the Docker SDK."""

    def __init__(self, client, lab):
        self.client = client
        self.lab = lab

    def decl(self, node, **extra):
        return dict({"name": self.lab.ns(node), "node": node, "image": NODE_IMAGE}, **extra)

    def params(self, *decls, **extra):
        return dict({"lab": self.lab.name, "containers": list(decls)}, **extra)

    def ours(self):
        """Every container (any state) labelled with the lab or named for it."""
        prefix = "topo-%s-" % self.lab.name
        found = {c.id: c for c in self.client.containers.list(
            all=True, filters={"label": "topo.lab=%s" % self.lab.name})}
        # the name filter is a substring match: keep only exact-prefix names
        for c in self.client.containers.list(all=True, filters={"name": prefix}):
            if c.name.startswith(prefix):
                found[c.id] = c
        return {c.name: c for c in found.values()}

    def state(self):
        """{name: (id, status)} of the lab's containers - what check mode must not change."""
        return {name: (c.id, c.status) for name, c in sorted(self.ours().items())}

    def get(self, node):
        return self.client.containers.get(self.lab.ns(node))

    def cleanup(self):
        for c in self.ours().values():
            try:
                c.remove(force=True, v=True)
            except Exception:  # already gone (NotFound), or removal in progress
                pass


@pytest.fixture
def docker_lab(docker_client, lab):
    """A DockerLab; its containers are removed (before ``lab`` deletes the namespaces)."""
    dl = DockerLab(docker_client, lab)
    try:
        yield dl
    finally:
        dl.cleanup()
        left = sorted(dl.ours())
        assert not left, "containers left behind: %s" % left


# --------------------------------------------------------------------------
# Independent readers
# --------------------------------------------------------------------------

def ns_inode(path):
    """The nsfs inode a path refers to (following symlinks), as ``stat -L`` reports it."""
    return int(sh("stat", "-L", "-c", "%i", path).strip())


def pid_netns_inode(pid):
    """The inode of /proc/PID/ns/net (PID may be "self"), from its ``net:[INODE]`` link text."""
    text = sh("readlink", "/proc/%s/ns/net" % pid).strip()
    assert text.startswith("net:[") and text.endswith("]"), text
    return int(text[5:-1])


def assert_named(docker_lab, node):
    """The running container of ``node`` has its own namespace named /run/netns/<name>,
    with the lab's marker on lo - seen from the host and from inside the container."""
    lab = docker_lab.lab
    c = docker_lab.get(node)
    c.reload()
    assert c.status == "running", (node, c.status)
    pid = c.attrs["State"]["Pid"]
    assert pid > 0
    assert ns_inode("/run/netns/%s" % lab.ns(node)) == pid_netns_inode(pid), node
    # not the test's own (host) namespace: network_mode none really isolates
    assert pid_netns_inode(pid) != pid_netns_inode("self")
    assert lo_alias(lab.ns(node)) == lab.ns_marker(node)
    inside = json.loads(c.exec_run(["ip", "-j", "link", "show"]).output)
    assert [(link["ifname"], link.get("ifalias")) for link in inside] == [("lo", lab.ns_marker(node))]
    return c


def assert_made_right(docker_lab, decl):
    """Docker's record of a container matches what the module promises for ``decl``."""
    lab = docker_lab.lab
    c = assert_named(docker_lab, decl["node"])
    cfg, host = c.attrs["Config"], c.attrs["HostConfig"]
    assert c.labels["topo.lab"] == lab.name
    assert c.labels["topo.node"] == decl["node"]
    assert json.loads(c.labels["topo.spec"]) == {
        "image": decl["image"], "cmd": decl.get("cmd"), "env": decl.get("env", {}),
        "binds": decl.get("binds", [])}
    assert cfg["Hostname"] == decl["node"]
    assert c.exec_run(["hostname"]).output.decode().strip() == decl["node"]
    assert host["NetworkMode"] == "none"
    assert {"NET_ADMIN", "NET_RAW"} <= set(host["CapAdd"] or [])
    assert host["Privileged"] is False
    assert host["Init"] is True
    assert c.image.id == docker_lab.client.images.get(decl["image"]).id
    env = dict(e.split("=", 1) for e in cfg["Env"] or [])  # None: no env at all
    for k, v in decl.get("env", {}).items():
        assert env[k] == v
    return c


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

def test_container_four_steps(docker_lab, ansible):
    lab = docker_lab.lab
    h1, h2 = docker_lab.decl("h1"), docker_lab.decl("h2", env={"ROLE": "server", "A": "1"})
    params = docker_lab.params(h1, h2)
    expected = [("create", "container", lab.ns("h1")), ("create", "container", lab.ns("h2"))]

    # 1. check: reports both creates, makes nothing (no container, no namespace)
    check = ansible.one("container", params, check=True)
    assert check["changed"] is True
    assert changes(check) == expected
    assert docker_lab.state() == {}
    assert lab.owned_names() == []

    # 2. apply, 3. apply again, 4. check again
    apply, again, recheck = ansible.run(step("container", params), step("container", params),
                                        step("container", params, check=True))
    assert apply["changed"] is True
    assert changes(apply) == expected
    assert apply["containers"] == [lab.ns("h1"), lab.ns("h2")]
    assert_noop(again)
    assert_noop(recheck)

    assert sorted(docker_lab.ours()) == [lab.ns("h1"), lab.ns("h2")]
    assert lab.owned_names() == [lab.ns("h1"), lab.ns("h2")]
    for decl in (h1, h2):
        assert_made_right(docker_lab, decl)
    # two containers, two namespaces
    assert ns_inode("/run/netns/" + lab.ns("h1")) != ns_inode("/run/netns/" + lab.ns("h2"))


def test_container_stopped_and_namespace_unnamed(docker_lab, ansible):
    lab = docker_lab.lab
    params = docker_lab.params(docker_lab.decl("h1"), docker_lab.decl("h2"))
    ok(ansible.one("container", params))
    c1 = assert_named(docker_lab, "h1")
    h2_id = docker_lab.get("h2").id
    old_inode = ns_inode("/run/netns/" + lab.ns("h1"))

    # stopped by hand: /run/netns/<h1> still holds the old (now process-less) namespace
    c1.stop(timeout=5)
    before = docker_lab.state()
    assert before[lab.ns("h1")][1] == "exited"
    check, apply, again = ansible.run(step("container", params, check=True), step("container", params),
                                      step("container", params))
    assert changes(check) == [("fix", "container", lab.ns("h1"))]
    assert detail(check, "fix", lab.ns("h1")) == "started (was exited)"
    assert changes(apply) == [("fix", "container", lab.ns("h1"))]
    assert detail(apply, "fix", lab.ns("h1")) == "started (was exited)"
    assert_noop(again)
    c1 = assert_named(docker_lab, "h1")  # the name now points at the new process's namespace
    assert c1.id == before[lab.ns("h1")][0]  # started, not recreated
    assert ns_inode("/run/netns/" + lab.ns("h1")) != old_inode
    assert docker_lab.get("h2").id == h2_id

    # the name removed by hand (ip netns del): the running container is named again
    sh("ip", "netns", "del", lab.ns("h2"))
    check, apply, again = ansible.run(step("container", params, check=True), step("container", params),
                                      step("container", params))
    for result in (check, apply):
        assert changes(result) == [("fix", "container", lab.ns("h2"))]
        assert detail(result, "fix", lab.ns("h2")).startswith("namespace named again")
    assert_noop(again)
    assert assert_named(docker_lab, "h2").id == h2_id


def test_container_paused_is_resumed(docker_lab, ansible):
    """A paused container is planned as a fix and the apply does it (docker refuses to
    *start* a paused container: it must be unpaused); its namespace stays the named one."""
    lab = docker_lab.lab
    params = docker_lab.params(docker_lab.decl("h1"))
    ok(ansible.one("container", params))
    c1 = docker_lab.get("h1")
    inode = ns_inode("/run/netns/" + lab.ns("h1"))
    c1.pause()
    check, apply, again = ansible.run(step("container", params, check=True), step("container", params),
                                      step("container", params))
    for result in (check, apply):
        assert changes(result) == [("fix", "container", lab.ns("h1"))]
        assert detail(result, "fix", lab.ns("h1")) == "unpaused"
    assert_noop(again)
    assert assert_named(docker_lab, "h1").id == c1.id
    assert ns_inode("/run/netns/" + lab.ns("h1")) == inode


def test_container_removed_is_created_again(docker_lab, ansible):
    lab = docker_lab.lab
    h1, h2 = docker_lab.decl("h1"), docker_lab.decl("h2")
    params = docker_lab.params(h1, h2)
    ok(ansible.one("container", params))
    old_id, h2_id = docker_lab.get("h1").id, docker_lab.get("h2").id

    docker_lab.get("h1").remove(force=True)
    # the stale name (the gone container's namespace, held by its mount) stays until apply
    stale = ns_inode("/run/netns/" + lab.ns("h1"))
    check = ansible.one("container", params, check=True)
    assert changes(check) == [("create", "container", lab.ns("h1"))]
    assert lab.ns("h1") not in docker_lab.ours()
    apply, again = ansible.run(step("container", params), step("container", params))
    assert changes(apply) == [("create", "container", lab.ns("h1"))]
    assert_noop(again)
    c1 = assert_made_right(docker_lab, h1)
    assert c1.id != old_id
    assert ns_inode("/run/netns/" + lab.ns("h1")) != stale
    assert docker_lab.get("h2").id == h2_id


def test_container_setting_changed_is_recreated(docker_lab, ansible):
    lab = docker_lab.lab
    h1, h2 = docker_lab.decl("h1", env={"ROLE": "client"}), docker_lab.decl("h2")
    ok(ansible.one("container", docker_lab.params(h1, h2)))
    old_id, h2_id = docker_lab.get("h1").id, docker_lab.get("h2").id
    h2_inode = ns_inode("/run/netns/" + lab.ns("h2"))

    h1_new = dict(h1, env={"ROLE": "server"})
    params = docker_lab.params(h1_new, h2)
    check, apply, again = ansible.run(step("container", params, check=True), step("container", params),
                                      step("container", params))
    for result in (check, apply):
        assert changes(result) == [("fix", "container", lab.ns("h1"))]
        text = detail(result, "fix", lab.ns("h1"))
        assert text.startswith("recreated:"), text
        assert "env" in text and "server" in text, text
        assert "image" not in text and "cmd" not in text, text  # only what changed is named
    assert_noop(again)
    c1 = assert_made_right(docker_lab, h1_new)
    assert c1.id != old_id
    # the other container is untouched: same container, same namespace
    assert docker_lab.get("h2").id == h2_id
    assert ns_inode("/run/netns/" + lab.ns("h2")) == h2_inode


def test_container_prune_and_absent(docker_lab, ansible):
    lab = docker_lab.lab
    h1, h2, h3 = (docker_lab.decl(n) for n in ("h1", "h2", "h3"))
    ok(ansible.one("container", docker_lab.params(h1, h2, h3)))
    kept = {n: docker_lab.get(n).id for n in ("h1", "h2")}

    # h3 no longer declared: removed (check first: only reported)
    reduced = docker_lab.params(h1, h2)
    check = ansible.one("container", reduced, check=True)
    assert changes(check) == [("remove", "container", lab.ns("h3"))]
    assert lab.ns("h3") in docker_lab.ours()
    apply, again = ansible.run(step("container", reduced), step("container", reduced))
    assert changes(apply) == [("remove", "container", lab.ns("h3"))]
    assert_noop(again)
    assert sorted(docker_lab.ours()) == [lab.ns("h1"), lab.ns("h2")]
    assert {n: docker_lab.get(n).id for n in ("h1", "h2")} == kept

    # prune=false leaves an undeclared container alone
    only_h1 = docker_lab.params(h1, prune=False)
    assert_noop(ansible.one("container", only_h1))
    assert sorted(docker_lab.ours()) == [lab.ns("h1"), lab.ns("h2")]

    # state absent: every container of the lab, found by label alone (no list given)
    absent = {"lab": lab.name, "state": "absent"}
    check, apply, again = ansible.run(step("container", absent, check=True), step("container", absent),
                                      step("container", absent))
    expected = [("remove", "container", lab.ns("h1")), ("remove", "container", lab.ns("h2"))]
    assert changes(check) == expected
    assert changes(apply) == expected
    assert_noop(again)
    assert docker_lab.ours() == {}


def test_container_not_made_by_topo_is_refused(docker_lab, ansible):
    lab = docker_lab.lab
    client = docker_lab.client
    # a container with the declared name and no topo label, and one with another lab's label
    foreign = client.containers.run(NODE_IMAGE, name=lab.ns("h1"), network_mode="none", init=True,
                                    detach=True, labels={"owner": "someone-else"})
    other = client.containers.run(NODE_IMAGE, name=lab.ns("h2"), network_mode="none", init=True,
                                  detach=True, labels={"topo.lab": lab.name + "z", "topo.node": "h2"})
    before = docker_lab.state()
    results = ansible.run(
        step("container", docker_lab.params(docker_lab.decl("h1")), check=True),
        step("container", docker_lab.params(docker_lab.decl("h1"))),
        step("container", docker_lab.params(docker_lab.decl("h2"))),
        # nor is a foreign container pruned or removed by absent: it has no label of this lab
        step("container", {"lab": lab.name, "state": "absent"}),
    )
    for res, name in zip(results[:3], (lab.ns("h1"), lab.ns("h1"), lab.ns("h2"))):
        assert res.get("failed") is True, res
        assert "was not made by topo" in res["msg"], res["msg"]
        assert name in res["msg"], res["msg"]
    assert_noop(results[3])
    # both still there, untouched (same id, still running), and no namespace was named
    assert docker_lab.state() == before
    assert before == {lab.ns("h1"): (foreign.id, "running"), lab.ns("h2"): (other.id, "running")}
    # not adopted either: no topo label was added to the foreign one
    assert "topo.lab" not in docker_lab.get("h1").labels
    assert docker_lab.get("h2").labels["topo.lab"] == lab.name + "z"
    assert lab.owned_names() == []
    foreign.remove(force=True)
    other.remove(force=True)


def test_container_missing_image(docker_lab, ansible):
    lab = docker_lab.lab
    image = "tm-missing-%s:latest" % secrets.token_hex(3)
    # the good container is declared first: the module fails before making anything
    params = docker_lab.params(docker_lab.decl("h1"), docker_lab.decl("h2", image=image))
    check, apply = ansible.run(step("container", params, check=True), step("container", params))
    for res in (check, apply):
        assert res.get("failed") is True, res
        assert image in res["msg"], res["msg"]
        assert "not in the local image store" in res["msg"], res["msg"]
    assert docker_lab.ours() == {}
    assert lab.owned_names() == []
