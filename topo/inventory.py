"""Phase 4, project: the expanded lab becomes an Ansible inventory.

Two kinds of hosts (DESIGN.md 3):

* ``topo_hosts`` - the machines that build the lab (``localhost``, connection local);
  ``group_vars/topo_hosts.json`` holds the whole desired state, one list per resource type,
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

from topo.casts import CAST_TYPES

CONNECTION = "topo.lab.netns"
#: How Ansible reaches a docker node: community.docker's docker connection (``docker exec``)
#: into the container ``ansible_host``, with the image's own Python (topo-node has python3).
DOCKER_HOST_VARS = {"ansible_connection": "community.docker.docker",
                    "ansible_python_interpreter": "/usr/bin/python3", "ansible_user": "root"}


def project(expanded: dict, python: str | None = None) -> dict:
    """The inventory as ``{relative path: data}``: hosts.yml, group_vars/topo_hosts.json and
    host_vars/<node>.json.

    ``python`` is the interpreter Ansible runs modules with, on the build host and inside
    netns nodes (they share its filesystem); it must have pyroute2. Default: this one.
    """
    python = python or sys.executable
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
                "topo_hosts": {"hosts": {"localhost": {
                    "ansible_connection": "local", "ansible_python_interpreter": python}}},
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
    }
    pings = {c["from"]: c["targets"] for c in expanded["checks"] if c["type"] == "ping"}
    files = {"hosts.yml": hosts, "group_vars/topo_hosts.json": build}
    for name, node in nodes.items():
        files[f"host_vars/{name}.json"] = {
            "topo_netns": node["netns"],
            "topo_interfaces": node["interfaces"],
            "topo_ping_targets": pings.get(name, []),
        }
    return files


#: libyaml's emitter when PyYAML was built with it (about 3x faster at 1000 nodes), else Python's.
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data) -> str:
    """YAML text for inventory files and snapshots: block style, keys in insertion order."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def write(directory: str, files: dict) -> None:
    """Write ``files`` (from :func:`project`) under ``directory``, removing stale vars files."""
    for sub in ("host_vars", "group_vars"):
        folder = os.path.join(directory, sub)
        if os.path.isdir(folder):
            keep = {os.path.basename(p) for p in files if p.startswith(sub + "/")}
            for name in os.listdir(folder):
                if name not in keep:
                    os.unlink(os.path.join(folder, name))
    for rel, data in files.items():
        path = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if rel.endswith(".json"):
            text = json.dumps(data, indent=1) + "\n"
        else:
            text = "---\n# Written by topo from the topology; edits are overwritten.\n" + dump(data)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
