"""Real-kernel tests of the topo.lab modules, run through ansible-playbook.

Every module is invoked the way a lab run invokes it: a playbook on localhost
(connection local, or topo.lab.netns inside a namespace) with the collection from
this checkout. The small callback plugin next to this file writes each task's
result to a JSON file, so one ansible-playbook process can run several steps
(apply, apply again, check) and the test still sees every result on its own.

The kernel is read back with iproute2's JSON output (``ip -j``), independently of
the pyroute2 code the modules use.

Every test gets its own lab name (``tm<hex>``); the ``lab`` fixture deletes every
namespace named ``topo-<lab>-*`` plus any other namespace the test registered,
whatever happened in the test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HERE = os.path.dirname(os.path.abspath(__file__))
ROUTE_PROTO = 116

ROOT_ONLY = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces"),
]


# --------------------------------------------------------------------------
# Shell helpers
# --------------------------------------------------------------------------

def sh(*argv, check=True):
    """Run a command (argv, no shell); return stdout. Raise with stderr on failure."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError("%s exited %d: %s%s" % (" ".join(map(str, argv)), proc.returncode,
                                                     proc.stdout, proc.stderr))
    return proc.stdout


def ip_json(ns, *args):
    """Parsed ``ip -j [-n ns] ARGS``."""
    argv = ["ip", "-j"] + (["-n", ns] if ns else []) + list(args)
    out = sh(*argv)
    return json.loads(out) if out.strip() else []


def netns_names():
    """Every name under /run/netns."""
    return sorted(item["name"] for item in ip_json(None, "netns", "list"))


def netns_exists(name):
    return name in netns_names()


# --------------------------------------------------------------------------
# Kernel readers (iproute2 JSON, flattened to what the modules declare)
# --------------------------------------------------------------------------

def links(ns):
    """{ifname: {kind, mtu, up, master, alias, mac, index, peer_index, peer_netnsid,
    mcast_snooping, mcast_querier}} of namespace ``ns``."""
    out = {}
    for link in ip_json(ns, "-d", "link", "show"):
        info = link.get("linkinfo", {})
        data = info.get("info_data", {})
        item = {
            "index": link["ifindex"],
            "kind": info.get("info_kind"),
            "mtu": link["mtu"],
            "up": "UP" in link["flags"],
            "master": link.get("master"),
            "alias": link.get("ifalias"),
            "mac": link.get("address"),
            # a veth's peer: link_index when it is in another namespace, else "link" (a name)
            "peer_index": link.get("link_index"),
            "peer_name": link.get("link"),
            "peer_netnsid": link.get("link_netnsid"),
        }
        if item["kind"] == "bridge":
            item["mcast_snooping"] = data.get("mcast_snooping")
            item["mcast_querier"] = data.get("mcast_querier")
        out[link["ifname"]] = item
    return out


def veth_peer(ns, ifname):
    """(namespace, ifname) of the other end of veth ``ns``/``ifname``, resolved through the
    peer's namespace id (not only its ifindex, which is 2 in every fresh namespace)."""
    end = links(ns)[ifname]
    assert end["kind"] == "veth", end
    if end["peer_netnsid"] is None:
        return ns, end["peer_name"]
    ids = {item["nsid"]: item.get("name") for item in ip_json(ns, "netns", "list-id")}
    peer_ns = ids[end["peer_netnsid"]]
    names = [n for n, link in links(peer_ns).items() if link["index"] == end["peer_index"]]
    assert len(names) == 1, (peer_ns, end)
    return peer_ns, names[0]


def addresses(ns):
    """{ifname: {"a.b.c.d/len": broadcast-or-None}} of IPv4 addresses in ``ns``."""
    out = {}
    for link in ip_json(ns, "-4", "addr", "show"):
        for a in link.get("addr_info", []):
            cidr = "%s/%d" % (a["local"], a["prefixlen"])
            out.setdefault(link["ifname"], {})[cidr] = a.get("broadcast")
    return out


def routes(ns, table="main"):
    """[{dst, gateway, dev, protocol}] of the IPv4 routes of ``ns`` (one table)."""
    out = []
    for r in ip_json(ns, "-4", "route", "show", "table", table):
        out.append({"dst": "0.0.0.0/0" if r["dst"] == "default" else
                    (r["dst"] if "/" in r["dst"] else r["dst"] + "/32"),
                    "gateway": r.get("gateway"), "dev": r.get("dev"),
                    "protocol": str(r.get("protocol", "boot"))})
    return out


def topo_routes(ns):
    """{dst: gateway} of routes with topo's protocol number (116) in the main table."""
    return {r["dst"]: r["gateway"] for r in routes(ns) if r["protocol"] == str(ROUTE_PROTO)}


def sysctl(ns, key):
    """The value of sysctl ``key`` inside namespace ``ns`` (str)."""
    return sh("ip", "netns", "exec", ns, "cat", "/proc/sys/" + key.replace(".", "/")).strip()


def lo_alias(ns):
    return links(ns)["lo"]["alias"]


# --------------------------------------------------------------------------
# Ansible runner
# --------------------------------------------------------------------------

def step(module, params, check=False, netns=None, vars=None, environment=None):
    """One task: ``topo.lab.<module>`` with ``params``; ``netns`` runs it inside that
    namespace through the topo.lab.netns connection; ``vars`` and ``environment`` are the
    task's keywords of those names."""
    return {"module": module, "params": params, "check": check, "netns": netns, "vars": vars or {},
            "environment": environment}


def _ansible_playbook():
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return exe if os.path.exists(exe) else shutil.which("ansible-playbook")


class Ansible:
    """Runs steps as tasks of one playbook, in one ansible-playbook process."""

    def __init__(self, tmp_path):
        self.dir = tmp_path / "ansible"
        self.dir.mkdir(exist_ok=True)
        self.runs = 0
        self.last_output = ""

    def run(self, *steps, verbose=False):
        """Run the steps in order (a failing step does not stop the next); return
        their results, each the module's result dict (with ``failed`` when it failed).
        ``verbose`` runs ansible-playbook with -vvv (its output: ``last_output``)."""
        self.runs += 1
        tasks = []
        for i, s in enumerate(steps):
            task = {"name": "step%d" % i, "topo.lab." + s["module"]: s["params"],
                    "check_mode": bool(s["check"]), "ignore_errors": True}
            task["vars"] = dict(s.get("vars") or {})
            if s["netns"]:
                task["connection"] = "topo.lab.netns"
                task["vars"]["topo_netns"] = s["netns"]
            if s.get("environment"):
                task["environment"] = s["environment"]
            tasks.append(task)
        play = [{"name": "topo module test", "hosts": "localhost", "connection": "local",
                 "gather_facts": False,
                 "vars": {"ansible_python_interpreter": sys.executable},
                 "tasks": tasks}]
        playbook = self.dir / ("run%d.yml" % self.runs)
        results_file = self.dir / ("run%d.json" % self.runs)
        playbook.write_text(json.dumps(play, indent=1))
        env = dict(os.environ,
                   ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                   # the checkout's collection, whatever the environment says (the cfg's
                   # collections_path=./ resolves to it too); TOPO_TEST_COLLECTIONS_PATH
                   # points the tests at another copy, e.g. a mutated one
                   ANSIBLE_COLLECTIONS_PATH=os.environ.get("TOPO_TEST_COLLECTIONS_PATH", ROOT),
                   ANSIBLE_INVENTORY_ENABLED="host_list",
                   ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
                   ANSIBLE_CALLBACKS_ENABLED="topo_test_results",
                   ANSIBLE_LOCAL_TEMP=str(self.dir / "tmp"),
                   ANSIBLE_NOCOLOR="1",
                   TOPO_TEST_RESULTS=str(results_file))
        proc = subprocess.run([_ansible_playbook(), "-i", "localhost,", str(playbook)] + (["-vvv"] if verbose else []),
                              capture_output=True, text=True, cwd=str(self.dir), env=env,
                              timeout=300, check=False)
        self.last_output = proc.stdout + proc.stderr
        got = json.loads(results_file.read_text()) if results_file.exists() else {}
        missing = [i for i in range(len(steps)) if "step%d" % i not in got]
        if missing:
            raise AssertionError("ansible-playbook (exit %d) gave no result for steps %s:\n%s"
                                 % (proc.returncode, missing, self.last_output))
        return [got["step%d" % i] for i in range(len(steps))]

    def one(self, module, params, check=False, netns=None):
        return self.run(step(module, params, check=check, netns=netns))[0]


@pytest.fixture
def ansible(tmp_path):
    return Ansible(tmp_path)


# --------------------------------------------------------------------------
# Result helpers
# --------------------------------------------------------------------------

def ok(result):
    """Assert the step succeeded; return it."""
    assert not result.get("failed"), "module failed: %s" % result.get("msg", result)
    return result


def changes(result):
    """Sorted (action, resource, name) of a successful step's changes."""
    ok(result)
    return sorted((c["action"], c["resource"], c["name"]) for c in result["changes"])


def detail(result, action, name):
    """The detail text of the one change (action, name) in a result."""
    found = [c["detail"] for c in result["changes"] if c["action"] == action and c["name"] == name]
    assert len(found) == 1, "expected one %s of %s in %s" % (action, name, result["changes"])
    return found[0]


def assert_noop(result):
    """changed=False and an empty change list (idempotency)."""
    ok(result)
    assert result["changed"] is False, result["changes"]
    assert result["changes"] == []


def four_steps(ansible, lab, module, params, expected, summarize=changes, after_check=None):
    """The Ansible idempotency sequence for one module on a lab that lacks ``params``:
    check (predicts ``expected`` and changes nothing; ``after_check`` may look further),
    apply (does ``expected``), apply again and check again (both no-ops).
    ``summarize`` turns a result into what is compared with ``expected``. Returns the apply."""
    before = lab.snapshot()
    check = ansible.one(module, params, check=True)
    assert check["changed"] is True
    assert summarize(check) == expected
    assert lab.snapshot() == before
    if after_check is not None:
        after_check()
    apply, again, recheck = ansible.run(step(module, params), step(module, params),
                                        step(module, params, check=True))
    assert apply["changed"] is True
    assert summarize(apply) == expected
    assert_noop(again)
    assert_noop(recheck)
    return apply


# --------------------------------------------------------------------------
# Lab fixture: unique names, hand-made objects, snapshot, guaranteed cleanup
# --------------------------------------------------------------------------

class Lab:
    def __init__(self):
        self.name = "tm" + secrets.token_hex(3)
        self.extra = set()

    @property
    def if_marker(self):
        return "topo:%s" % self.name

    def ns_marker(self, node):
        return "topo:%s:%s" % (self.name, node)

    def ns(self, node):
        return "topo-%s-%s" % (self.name, node)

    def track(self, name):
        """Register a namespace with another name pattern for deletion at teardown."""
        self.extra.add(name)
        return name

    def owned_names(self):
        """Namespaces that exist and are named for this lab (or registered)."""
        prefix = "topo-%s-" % self.name
        return [n for n in netns_names() if n.startswith(prefix) or n in self.extra]

    def make_ns(self, node, alias="marker", name=None):
        """Create a namespace by hand (ip netns add) with lo up; its lo alias is the
        lab's marker for ``node`` (alias="marker"), ``alias`` itself, or none (None)."""
        name = name or self.ns(node)
        self.track(name)
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        if alias == "marker":
            alias = self.ns_marker(node)
        if alias:
            sh("ip", "-n", name, "link", "set", "lo", "alias", alias)
        return name

    def make_bridge(self, ns, name, alias="marker"):
        sh("ip", "-n", ns, "link", "add", name, "type", "bridge")
        sh("ip", "-n", ns, "link", "set", name, "up")
        if alias == "marker":
            alias = self.if_marker
        if alias:
            sh("ip", "-n", ns, "link", "set", name, "alias", alias)

    def make_veth(self, ns_a, if_a, ns_b, if_b, alias="marker", up=True):
        """A veth pair made by hand, one end in each namespace."""
        sh("ip", "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b,
           "netns", ns_b)
        if alias == "marker":
            alias = self.if_marker
        for ns, ifname in ((ns_a, if_a), (ns_b, if_b)):
            if up:
                sh("ip", "-n", ns, "link", "set", ifname, "up")
            if alias:
                sh("ip", "-n", ns, "link", "set", ifname, "alias", alias)

    def snapshot(self, sysctls=()):
        """Everything the modules could change in this lab's namespaces, without the
        values the kernel changes by itself (timers, operstate, IPv6 autoconf)."""
        snap = {}
        for ns in self.owned_names():
            snap[ns] = {
                "links": links(ns),
                "addresses": addresses(ns),
                "routes": routes(ns, "all"),
                "sysctls": {k: sysctl(ns, k) for k in sysctls},
            }
        return snap

    def cleanup(self):
        for name in self.owned_names():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture
def lab():
    lab = Lab()
    try:
        yield lab
    finally:
        lab.cleanup()
        left = lab.owned_names()
        assert not left, "namespaces left behind: %s" % left
