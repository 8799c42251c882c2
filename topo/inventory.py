"""Phase 4, project: the expanded lab becomes an Ansible inventory.

Two kinds of hosts (DESIGN.md 3):

* ``topo_hosts`` - the machines that build the lab, taken from a build-host inventory
  (default: the collection's ``inventories/localhost.yml``, this machine with connection
  local; see :func:`build_hosts`); ``group_vars/topo_hosts.json`` holds the whole desired state, one list per resource type,
  which the roles pass to the batched modules (``topo_execs``, the nodes' ``exec:`` commands
  for topo.lab.exec, only when some node has them);
* ``topo_nodes`` - the lab's nodes, reached with the ``topo.lab.netns`` connection, so
  ``ansible -i <inventory> NODE -m command -a 'ip -br addr'`` runs inside the node; docker
  nodes with community.docker's ``docker`` connection, inside the container (on a remote
  build host with ``topo.lab.netns`` and ``topo_container``: ``docker exec`` there). Every node is
  also in its kind's group (``netns`` or ``docker``) and in its declared groups. A node whose
  build host is remote (its ``host`` key, or the only build host) is reached through that
  host: its host_vars carry ``topo_build_host`` and the host's SSH settings
  (:func:`node_connection_vars`).

Remote build hosts (any connection but ``local``) need only sshd, root and python3 >= 3.9:
:func:`host_vars` gives them ``topo_pythonpath``, where the playbooks put the controller's
pyroute2 (``roles/lab/tasks/pyroute2.yml``) and the ``PYTHONPATH`` their modules run with,
and SSH pipelining and ControlPersist unless the inventory says otherwise.

:func:`project` is pure (the inventory as data); :func:`write` puts it on disk. Both are
deterministic: the same expanded lab gives byte-identical files. ``hosts.yml`` is YAML, for
people; the vars files are JSON, which ansible-core 2.19 loads about twice as fast as YAML
(a no-op play on a 1000-node lab: 1.5 s instead of 2.8 s, measured on the 2-core
reference machine), since it tags the origin of every YAML value.
"""

from __future__ import annotations

import json
import os
import sys

import yaml

from ansible_collections.topo.lab.plugins.module_utils.api import CAST_TYPES
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not at run time: destroy imports this module without the expansion
    from topo.expand.shape import Expanded

CONNECTION = "topo.lab.netns"
#: How Ansible reaches a docker node: community.docker's docker connection (``docker exec``)
#: into the container ``ansible_host``, with the image's own Python (topo-node has python3).
DOCKER_HOST_VARS = {"ansible_connection": "community.docker.docker",
                    "ansible_python_interpreter": "/usr/bin/python3", "ansible_user": "root"}


#: The build-host inventory used when none is given, relative to the collection's root.
DEFAULT_HOSTS = os.path.join("inventories", "localhost.yml")
#: Where a remote build host keeps the controller's pyroute2, zipped; its modules run with it
#: as PYTHONPATH (roles/lab/tasks/pyroute2.yml copies it there).
REMOTE_PYTHONPATH = "/var/lib/topo/pyroute2.zip"
#: A remote build host's Python when its inventory names none (Debian's; >= 3.9 needed).
REMOTE_PYTHON = "/usr/bin/python3"
#: SSH to a remote build host unless its inventory says otherwise: one master connection per
#: host kept 10 minutes (every task and every node on that host shares it), modules piped
#: into Python rather than copied (ansible.builtin.ssh's ssh_args and pipelining). A host
#: that dies mid-run sends nothing, not even a reset: without keep-alives its session would
#: wait for TCP's own timeout (about 15 minutes); with them ssh gives up after 3 unanswered
#: probes 5 s apart, Ansible marks the host unreachable and the other hosts finish.
REMOTE_SSH = {"ansible_ssh_args": "-C -o ControlMaster=auto -o ControlPersist=600s "
                                  "-o ServerAliveInterval=5 -o ServerAliveCountMax=3",
              "ansible_ssh_pipelining": True}
#: A build host's variables a node on it copies, so that its connection reaches the same host
#: the same way (plugins/connection/netns.py's options for a remote build host).
SSH_VARS = ("ansible_host", "ansible_user", "ansible_port", "ansible_ssh_private_key_file",
            "ansible_private_key_file", "ansible_ssh_common_args", "ansible_ssh_args",
            "ansible_ssh_pipelining", "ansible_python_interpreter", "topo_pythonpath")
#: The host that runs the cast, iperf3 and capture checks of a lab with a remote build host:
#: the controller itself (group ``topo_controller``, connection local), which reaches each
#: participant through its build host (module_utils/_process.py says why).
CONTROLLER = "topo-controller"
#: A build host's variables a participant on it carries (its ``ssh``), so that the controller
#: can start programs in the node over SSH (module_utils/_process.py's ``ssh_argv``).
PLACE_SSH_VARS = ("ansible_host", "ansible_user", "ansible_port", "ansible_ssh_private_key_file",
                  "ansible_private_key_file", "ansible_ssh_common_args", "ansible_become", "ansible_become_user")


def build_hosts(path: str | None = None) -> dict:
    """The ``topo_hosts`` group of a build-host inventory (YAML), as ``{host: vars}``: each
    host's variables over the group's (``topo_hosts.vars``) over ``all.vars``.

    ``path`` defaults to the collection's ``inventories/localhost.yml`` (in a checkout, the
    repository's; once installed, the installed collection's). Raises EnvironmentProblem
    when the file cannot be read or has no ``all.children.topo_hosts.hosts``.
    """
    from topo.errors import EnvironmentProblem
    from topo.labdir import collection_root

    path = path or os.path.join(collection_root(), DEFAULT_HOSTS)
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        group = data["all"]["children"]["topo_hosts"]
        hosts = group["hosts"]
        common = dict(data["all"].get("vars") or {}) | dict(group.get("vars") or {})
        table = {str(name): common | dict(v or {}) for name, v in hosts.items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise EnvironmentProblem(f"{path}: not a build-host inventory with all.children.topo_hosts.hosts "
                                 f"({type(exc).__name__}: {exc})") from None
    return table


def is_remote(host: dict) -> bool:
    """True when a build host (its inventory variables) is reached over SSH, not ``local``."""
    return host.get("ansible_connection", "ssh") != "local"


def destroy_inventory(lab: str, hosts: str | None = None) -> str:
    """A minimal inventory for destroying ``lab`` by its markers on every build host of
    ``hosts`` (default: this machine), with no topology file; returns its path (in the lab
    directory)."""
    from topo import labdir
    d = labdir.prepare(lab)
    inv = os.path.join(d, "destroy-inventory")
    write(inv, {"hosts.yml": {"all": {"vars": {"topo_lab": lab}, "children": {
        "topo_hosts": {"hosts": host_vars(build_hosts(hosts), sys.executable)}}}}})
    return inv


def host_vars(hosts: dict, python: str) -> dict:
    """The ``topo_hosts`` of the lab inventory, ``{host: vars}``: a local host gets
    ``python`` as its interpreter unless it names one; a remote host gets
    :data:`REMOTE_PYTHON`, ``topo_pythonpath`` (:data:`REMOTE_PYTHONPATH`) and
    :data:`REMOTE_SSH` unless it names them."""
    out = {}
    for name, v in hosts.items():
        if not is_remote(v):
            out[name] = v | {"ansible_python_interpreter": v.get("ansible_python_interpreter", python)}
        else:
            out[name] = {"ansible_python_interpreter": REMOTE_PYTHON, "topo_pythonpath": REMOTE_PYTHONPATH,
                         **REMOTE_SSH} | v
    return out


def node_build_host(node: dict, hosts: dict) -> str | None:
    """The build host of an expanded node: its ``host`` key, else the only build host (None
    when there are several and the node names none)."""
    return node.get("host") or (next(iter(hosts)) if len(hosts) == 1 else None)


def node_connection_vars(node: dict, hosts: dict) -> dict:
    """Variables that reach a node on a remote build host (``hosts`` as from
    :func:`host_vars`): ``topo_build_host`` and the host's SSH settings, interpreter and
    ``topo_pythonpath``, and ``topo_build_host_become`` (``_user``) when the host is reached
    with ``ansible_become``. A docker node there is reached the same way, into its container
    (``topo_container``: ``docker exec`` on that host; the connection :data:`CONNECTION`
    instead of community.docker's, which reaches only this machine's dockerd), with the
    image's Python (:data:`DOCKER_HOST_VARS`). ``{}`` for a node on a local build host."""
    name = node_build_host(node, hosts)
    host = hosts.get(name) if name else None
    if host is None or not is_remote(host):
        return {}
    if node["kind"] == "docker":
        reach = node_connection_vars(dict(node, kind="netns"), hosts)
        return reach | {"ansible_connection": CONNECTION, "topo_container": node["netns"],
                        "ansible_python_interpreter": DOCKER_HOST_VARS["ansible_python_interpreter"]}
    become = {}
    if host.get("ansible_become") not in (None, False):
        # the connection puts sudo before `ip netns exec` on the build host; Ansible's own
        # become (ansible_become on the node) would put it inside the namespace, too late
        become = {"topo_build_host_become": host["ansible_become"],
                  **({"topo_build_host_become_user": host["ansible_become_user"]}
                     if "ansible_become_user" in host else {})}
    return {"topo_build_host": name, "ansible_host": host.get("ansible_host", name),
            **{k: host[k] for k in SSH_VARS if k in host and k != "ansible_host"}, **become}


def project(expanded: Expanded, python: str | None = None, hosts: dict | None = None) -> dict:
    """The inventory as ``{relative path: data}``: hosts.yml, group_vars/topo_hosts.json and
    host_vars/<node>.json.

    A lab placed on several build hosts (its expanded lab has ``stitches``) is split: each
    build host's desired state is host_vars/<host>.json (its nodes, its copies of bridges,
    its veths, tunnels and stitch devices, impairments, and the checks whose capture node,
    sender or client it holds), group_vars/topo_hosts.json keeps only ``topo_lab``, and
    each node's vars name its ``topo_build_host``. One host: one group_vars file, as always.

    ``python`` is the interpreter Ansible runs modules with, on the build host and inside
    netns nodes (they share its filesystem); it must have pyroute2. Default: this one.
    ``hosts`` are the build hosts, ``{host: vars}`` (default: :func:`build_hosts`), see
    :func:`host_vars`. UsageError (exit 2) when a build host has a node's name.
    """
    python = python or sys.executable
    hosts_vars = host_vars(build_hosts() if hosts is None else hosts, python)
    on_controller = "stitches" in expanded and any(is_remote(v) for v in hosts_vars.values())
    clash = sorted((set(hosts_vars) | ({CONTROLLER} if on_controller else set())) & set(expanded["nodes"]))
    if clash:
        from topo.errors import UsageError
        raise UsageError(f"build host{'s' if len(clash) > 1 else ''} {', '.join(clash)} also "
                         f"name{'' if len(clash) > 1 else 's'} a node of lab {expanded['lab']}; Ansible "
                         "knows both by one name: rename the build host in its inventory")
    lab = expanded["lab"]
    nodes = expanded["nodes"]
    groups: dict[str, list[str]] = {}
    for name, node in nodes.items():
        for g in [node["kind"], *node["groups"]]:
            groups.setdefault(g, []).append(name)
    hosts = {
        "all": {
            "vars": {"topo_lab": lab},
            "children": {
                "topo_hosts": {"hosts": hosts_vars},
                "topo_nodes": {
                    "vars": {"ansible_connection": CONNECTION, "ansible_python_interpreter": python,
                             "ansible_pipelining": True},
                    "hosts": {name: (DOCKER_HOST_VARS | {"ansible_host": node["netns"]})
                              if node["kind"] == "docker" else None for name, node in nodes.items()},
                },
                **{g: {"hosts": {n: None for n in members}} for g, members in sorted(groups.items())},
            },
        }
    }
    controller = {}
    if on_controller:
        # Several build hosts, some remote: the checks that span nodes run on the controller,
        # which reaches each participant over SSH through its build host (participants of one
        # check may sit on several hosts); the build hosts keep their pings (one batched call
        # each, from the nodes they hold). One remote host alone runs them as before.
        # A cast check with a during: runs there too, in role verify_during, which every
        # build host and the controller walk in step (the same topo_during list): the build
        # hosts set its links down and up, the controller runs it (its runs_on).
        checks = [_reached(c, nodes, hosts_vars) for c in expanded["checks"] if c["type"] != "ping"]
        plain = [c for c in checks if "during" not in c]
        controller = {"topo_captures": [c for c in plain if c["type"] == "capture"],
                      "topo_casts": [c for c in plain if c["type"] in CAST_TYPES],
                      "topo_iperfs": [c for c in plain if c["type"] == "iperf3"]}
        hosts["all"]["children"]["topo_controller"] = {"hosts": {CONTROLLER: {
            "ansible_connection": "local", "ansible_python_interpreter": python}}}
        expanded = dict(expanded, checks=[c if c["type"] == "ping" else _run_by_controller(c, nodes, hosts_vars)
                                          for c in expanded["checks"] if c["type"] == "ping" or "during" in c])
        during = [_with_runs_on(c, nodes) for c in expanded["checks"] if "during" in c]
        if during:
            controller["topo_during"] = during
    if "stitches" not in expanded:
        files = {"hosts.yml": hosts, "group_vars/topo_hosts.json": _build_vars(expanded, lab)}
    else:
        # Several build hosts: each gets only what is made on it (host_vars/<host>.json);
        # group_vars/topo_hosts.json keeps what they share.
        files = {"hosts.yml": hosts, "group_vars/topo_hosts.json": {"topo_lab": lab}}
        for h in hosts_vars:
            files[f"host_vars/{h}.json"] = _build_vars(_on_host(expanded, h), lab)
    if on_controller:
        files["group_vars/topo_controller.json"] = controller
    for name, node in nodes.items():
        files[f"host_vars/{name}.json"] = {
            "topo_netns": node["netns"],
            "topo_interfaces": node["interfaces"],
            **node_connection_vars(node, hosts_vars),
        }
    return files


#: Keys of a stitch device that are the expansion's, not the tunnel module's.
_STITCH_ONLY = ("host", "stitch")


def _reached(check: dict, nodes: dict, hosts: dict) -> dict:
    """A copy of ``check`` whose participants on a remote build host carry ``ssh``: that
    host's name and SSH settings (:data:`PLACE_SSH_VARS`), how the controller reaches them.
    Participants are the dicts with ``node`` and ``netns`` (a capture check's own place and
    its traffic's, known by namespace)."""
    by_netns = {n["netns"]: name for name, n in nodes.items()}

    def ssh(node: str | None) -> dict | None:
        h = node_build_host(nodes[node], hosts) if node in nodes else None
        v = hosts.get(h) if h else None
        if v is None or not is_remote(v):
            return None
        return {"name": h, **{k: v[k] for k in PLACE_SSH_VARS if k in v}}

    def reach(item):
        if isinstance(item, list):
            return [reach(i) for i in item]
        if not isinstance(item, dict):
            return item
        out = {k: reach(v) for k, v in item.items()}
        if "netns" in item:
            via = ssh(item.get("node") or by_netns.get(item["netns"]))
            if via:
                out["ssh"] = via
        return out

    return reach(check)


def _run_by_controller(check: dict, nodes: dict, hosts: dict) -> dict:
    """A check with a during: as the controller runs it: its participants reached
    (:func:`_reached`), its ``during`` as the build hosts take it (interfaces, not places),
    ``runs_on`` :data:`CONTROLLER`."""
    out = _reached({k: v for k, v in check.items() if k != "during"}, nodes, hosts)
    return dict(out, during=check["during"], runs_on=CONTROLLER)


def _strip(item: dict, keys=("host",)) -> dict:
    return {k: v for k, v in item.items() if k not in keys}


def _check_host(check: dict, nodes: dict) -> str:
    """The build host that runs ``check``: its capture node's, sender's, client's or first
    participant's host."""
    for key in ("capture", "sender", "client", "relay"):
        who = check.get(key)
        if isinstance(who, dict) and who.get("node") in nodes:
            return nodes[who["node"]]["host"]
    for key in ("senders", "servers", "clients", "members", "receivers"):
        for who in check.get(key) or []:
            if who.get("node") in nodes:
                return nodes[who["node"]]["host"]
    if check.get("node") in nodes:
        return nodes[check["node"]]["host"]
    return next(iter(nodes.values()))["host"]


def _runs_on(check: dict, nodes: dict) -> str:
    """The build host that runs ``check``: a ping's source node's, else :func:`_check_host`."""
    return nodes[check["from"]]["host"] if check["type"] == "ping" else _check_host(check, nodes)


def _with_runs_on(check: dict, nodes: dict) -> dict:
    """``check`` (one with a during:) naming the build host that runs it, ``runs_on``: its
    own when it has one (the controller's, :func:`project`), else :func:`_runs_on`."""
    return check if "runs_on" in check else dict(check, runs_on=_runs_on(check, nodes))


def _on_host(expanded: Expanded, host: str) -> dict:
    """The part of a multi-host expanded lab made on build ``host``: its nodes, the bridges
    it holds a copy of, its veths, tunnels and stitch devices (in the tunnel module's shape),
    impairments, the pings of its nodes and the other checks it runs (:func:`_check_host`);
    features plus ``vxlan`` when it has stitches."""
    nodes = expanded["nodes"]
    stitches = [_strip(d, _STITCH_ONLY) for d in expanded["stitches"] if d["host"] == host]
    features = list(expanded.get("features", []))
    if stitches and "vxlan" not in features:
        features = sorted(features + ["vxlan"])
    return {
        "nodes": {n: node for n, node in nodes.items() if node["host"] == host},
        "bridges": {b: br for b, br in expanded["bridges"].items() if host in br["hosts"]},
        "veths": [_strip(v) for v in expanded["veths"] if v["host"] == host],
        "tunnels": [_strip(t) for t in expanded["tunnels"] if t["host"] == host] + stitches,
        "impairments": [_strip(i) for i in expanded["impairments"] if i["host"] == host],
        "features": features,
        # a check with links down goes to every build host (each sets its own links down),
        # naming the one that runs it
        "checks": [c if "during" not in c else _with_runs_on(c, nodes) for c in expanded["checks"]
                   if "during" in c or _runs_on(c, nodes) == host],
        **({"autoaddress": expanded["autoaddress"]} if "autoaddress" in expanded else {}),
    }


def _build_vars(expanded: dict, lab: str) -> dict:
    """The desired state a build host converges (the lab role's variables), from an
    expanded lab or one host's part of it (:func:`_on_host`)."""
    nodes = expanded["nodes"]
    checks = [c for c in expanded["checks"] if "during" not in c]  # the others run in role verify_during
    namespaces = [{"name": n["netns"], "node": name, "sysctls": n["sysctls"], "kind": n["kind"]}
                  for name, n in nodes.items()]
    namespaces += [{"name": b["netns"], "node": name, "sysctls": {}, "kind": "netns"}
                   for name, b in expanded["bridges"].items() if not b.get("node")]
    addresses = []
    managed = expanded.get("autoaddress", True)  # False: unaddressed interfaces are left to exec:
    for node in nodes.values():
        lo = [a for a in (node["loopback"], node.get("loopback6")) if a] + node.get("anycast", [])
        if lo:
            addresses.append({"netns": node["netns"], "ifname": "lo", "addresses": lo})
        for iface in node["interfaces"]:
            if not managed and not iface["address"]:
                continue
            addresses.append({"netns": node["netns"], "ifname": iface["ifname"],
                              "addresses": [a for a in (iface["address"], iface.get("address6")) if a]})
    build = {
        "topo_lab": lab,
        "topo_containers": [{"name": n["netns"], "node": name, **n["container"], "sysctls": n["sysctls"]}
                            for name, n in nodes.items() if n["kind"] == "docker"],
        "topo_namespaces": namespaces,
        "topo_namespace_names": [ns["name"] for ns in namespaces],
        "topo_bridges": [{"netns": b["netns"], "name": b["ifname"], "mtu": b["mtu"],
                          "mcast_snooping": b["mcast_snooping"], "mcast_querier": b["mcast_querier"]}
                         for b in expanded["bridges"].values()],
        "topo_veths": expanded["veths"],
        "topo_tunnels": expanded.get("tunnels", []),
        "topo_impairments": expanded.get("impairments", []),
        "topo_features": expanded.get("features", []),
        "topo_captures": [c for c in checks if c["type"] == "capture"],
        "topo_casts": [c for c in checks if c["type"] in CAST_TYPES],
        "topo_iperfs": [c for c in checks if c["type"] == "iperf3"],
        "topo_addresses": addresses,
        "topo_routes": [{"netns": n["netns"], "routes": n["routes"]} for n in nodes.values() if n["routes"]],
        # one entry per source node with its namespace, so a build host gets the pings of the
        # nodes it builds (role verify_ping: one topo.lab.ping call per build host)
        "topo_pings": [_ping_plan(c, nodes[c["from"]]["netns"])
                       for c in checks if c["type"] == "ping" and c["targets"]],
    }
    during = [c for c in expanded["checks"] if "during" in c]
    if during:  # checks with links down, one at a time (role verify_during)
        build["topo_during"] = during
    execs = [{"node": name, "netns": n["netns"], "kind": n["kind"], "commands": n["exec"]}
             for name, n in nodes.items() if n.get("exec")]
    if execs:
        build["topo_execs"] = execs
    return build


def _ping_plan(check: dict, netns: str) -> dict:
    """The pings of one source node as topo.lab.ping's ``sources`` entry in columns:
    ``{node, netns, addresses, nodes, expect_fail?}``, each column one comma-separated string
    (Ansible takes it for a list; node names and addresses hold no comma), ``expect_fail``
    only when some target must not answer. For the 2,450 pairs of a 50-node star that is
    about 45 kB for Ansible to load and template on each playbook run instead of 150 kB of
    2,450 target dicts, 0.5 s less of Ansible's CPU in a verify (measured on this project's
    build host, issue 16)."""
    targets = check["targets"]
    plan = {"node": check["from"], "netns": netns, "addresses": ",".join(t["address"] for t in targets),
            "nodes": ",".join(t["node"] for t in targets)}
    fail = [t["address"] for t in targets if t["expect"] == "fail"]
    if fail:
        plan["expect_fail"] = ",".join(fail)
    return plan


#: libyaml's emitter when PyYAML was built with it (about 3x faster at 1000 nodes), else Python's.
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data) -> str:
    """YAML text for inventory files and snapshots: block style, keys in insertion order."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def write_dump(path: str, data) -> bool:
    """Write :func:`dump` of ``data`` to ``path`` (atomically), headed by a comment line
    carrying a digest of ``data``; when the file there already carries the same digest,
    leave it: the YAML dump is the costly part (0.16 s of CPU for a 50-node star with its
    2,450 pings, on this project's build host; the digest of its JSON takes 0.01 s), and a
    verify or re-apply of an unchanged lab wrote the same text again. Returns whether the
    file was written."""
    import hashlib

    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    head = f"# written by topo; digest of what follows: sha256 {digest}\n"
    try:
        with open(path) as f:
            if f.readline() == head:
                return False
    except (OSError, UnicodeDecodeError):
        pass
    with open(path + ".tmp", "w") as f:
        f.write(head + dump(data))
    os.replace(path + ".tmp", path)
    return True


def render(files: dict) -> dict[str, str]:
    """The text of each file of :func:`project`, ``{relative path: text}``: ``.json`` files
    as indented JSON, the others (hosts.yml) as YAML under a do-not-edit header. What
    :func:`write` puts on disk and the inventory snapshots compare."""
    out = {}
    for rel, data in files.items():
        if rel.endswith(".json"):
            out[rel] = json.dumps(data, indent=1) + "\n"
        else:
            out[rel] = "---\n# Written by topo from the topology; edits are overwritten.\n" + dump(data)
    return out


def write(directory: str, files: dict) -> None:
    """Write ``files`` (from :func:`project`) under ``directory`` as :func:`render` spells
    them, each atomically (temporary file, then rename), removing stale vars files.
    Raises OSError when the directory cannot be written."""
    for sub in ("host_vars", "group_vars"):
        folder = os.path.join(directory, sub)
        if os.path.isdir(folder):
            keep = {os.path.basename(p) for p in files if p.startswith(sub + "/")}
            for name in os.listdir(folder):
                if name not in keep:
                    os.unlink(os.path.join(folder, name))
    for rel, text in render(files).items():
        path = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
