"""Phase 4, project: the expanded lab becomes an Ansible inventory.

Two kinds of hosts (DESIGN.md 3):

* ``topo_hosts`` - the machines that build the lab, taken from a build-host inventory
  (default: the collection's ``inventories/localhost.yml``, this machine with connection
  local; see :func:`build_hosts`); ``group_vars/topo_hosts.json`` holds the whole desired state, one list per resource type,
  which the roles pass to the batched modules;
* ``topo_nodes`` - the lab's nodes, reached with the ``topo.lab.netns`` connection, so
  ``ansible -i <inventory> NODE -m command -a 'ip -br addr'`` runs inside the node; docker
  nodes with community.docker's ``docker`` connection, inside the container. Every node is
  also in its kind's group (``netns`` or ``docker``) and in its declared groups.

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
from topo.expand.shape import Expanded

CONNECTION = "topo.lab.netns"
#: How Ansible reaches a docker node: community.docker's docker connection (``docker exec``)
#: into the container ``ansible_host``, with the image's own Python (topo-node has python3).
DOCKER_HOST_VARS = {"ansible_connection": "community.docker.docker",
                    "ansible_python_interpreter": "/usr/bin/python3", "ansible_user": "root"}


#: The build-host inventory used when none is given, relative to the collection's root.
DEFAULT_HOSTS = os.path.join("inventories", "localhost.yml")


def build_hosts(path: str | None = None) -> dict:
    """The ``topo_hosts`` group of a build-host inventory (YAML), as ``{host: vars}``.

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
        hosts = data["all"]["children"]["topo_hosts"]["hosts"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise EnvironmentProblem(f"{path}: not a build-host inventory with all.children.topo_hosts.hosts "
                                 f"({type(exc).__name__}: {exc})") from None
    return {name: dict(v or {}) for name, v in hosts.items()}


def project(expanded: Expanded, python: str | None = None, hosts: dict | None = None) -> dict:
    """The inventory as ``{relative path: data}``: hosts.yml, group_vars/topo_hosts.json and
    host_vars/<node>.json.

    ``python`` is the interpreter Ansible runs modules with, on the build host and inside
    netns nodes (they share its filesystem); it must have pyroute2. Default: this one.
    ``hosts`` are the build hosts, ``{host: vars}`` (default: :func:`build_hosts`); a host
    with a local connection gets ``python`` as its interpreter unless it names one.
    """
    python = python or sys.executable
    hosts_vars = {name: (v | {"ansible_python_interpreter": v.get("ansible_python_interpreter", python)}
                         if v.get("ansible_connection") == "local" else v)
                  for name, v in (build_hosts() if hosts is None else hosts).items()}
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
    namespaces = [{"name": n["netns"], "node": name, "sysctls": n["sysctls"], "kind": n["kind"]}
                  for name, n in nodes.items()]
    namespaces += [{"name": b["netns"], "node": name, "sysctls": {}, "kind": "netns"}
                   for name, b in expanded["bridges"].items() if not b.get("node")]
    addresses = []
    for node in nodes.values():
        lo = ([node["loopback"]] if node["loopback"] else []) + node.get("anycast", [])
        if lo:
            addresses.append({"netns": node["netns"], "ifname": "lo", "addresses": lo})
        for iface in node["interfaces"]:
            addresses.append({"netns": node["netns"], "ifname": iface["ifname"],
                              "addresses": [iface["address"]] if iface["address"] else []})
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
        "topo_captures": [c for c in expanded["checks"] if c["type"] == "capture"],
        "topo_casts": [c for c in expanded["checks"] if c["type"] in CAST_TYPES],
        "topo_iperfs": [c for c in expanded["checks"] if c["type"] == "iperf3"],
        "topo_addresses": addresses,
        "topo_routes": [{"netns": n["netns"], "routes": n["routes"]} for n in nodes.values() if n["routes"]],
        # one entry per source node with its namespace, so a build host gets the pings of the
        # nodes it builds (role verify_ping: one topo.lab.ping call per build host)
        "topo_pings": [{"node": c["from"], "netns": nodes[c["from"]]["netns"], "targets": c["targets"]}
                       for c in expanded["checks"] if c["type"] == "ping" and c["targets"]],
    }
    files = {"hosts.yml": hosts, "group_vars/topo_hosts.json": build}
    for name, node in nodes.items():
        files[f"host_vars/{name}.json"] = {
            "topo_netns": node["netns"],
            "topo_interfaces": node["interfaces"],
        }
    return files


#: libyaml's emitter when PyYAML was built with it (about 3x faster at 1000 nodes), else Python's.
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data) -> str:
    """YAML text for inventory files and snapshots: block style, keys in insertion order."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


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
