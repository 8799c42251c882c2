"""containerlab topology files (``*.clab.yml``, ``*.clab.yaml``) as topo labs.

The file is read by the YAML loader (lines for every value), then mapped onto the raw
document of topo's own YAML form, each mapped value keeping the line it came from, so the
model's and the expansion's problems name the containerlab file's lines.

What is taken, and what it becomes:

=====================================  ====================================================
containerlab                           topo
=====================================  ====================================================
``name``                               ``name``
``mgmt``, ``mgmt-ipv4``, ``mgmt-ipv6``  ignored, with a warning (topo nodes have no
                                       management network)
node ``kind: linux``                   a docker node (``image``, default topo-node:latest;
                                       ``cmd``, ``env``, ``binds``, ``exec``); with
                                       ``# topo: kind=netns``, a namespace node (``exec``
                                       kept; image, cmd, env and binds ignored, with a warning)
node ``kind: bridge``                  a topo bridge in its own namespace
                                       ``topo-<lab>-<bridge>``, never the root namespace
``topology.defaults``, ``kinds``       merged as containerlab does: the node's value wins
                                       over its kind's, which wins over the defaults;
                                       ``env`` maps and ``binds`` (by container path) merge
``links: [{endpoints: [a:e1, b:e1]}]``  a veth (to a bridge node: a port of that bridge;
                                       the bridge side's interface name is topo's
                                       ``<node>-<ifname>``); ``mtu``
``links: [{type: veth, endpoints:      the same, with endpoint ``mac``
[{node, interface, mac}], mtu}]``
=====================================  ====================================================

Anything else - another kind, link type (``host``, ``mgmt-net``, ``macvlan``, ``vxlan``,
``vxlan-stitch``, ``dummy``) or key - is a problem naming the file, line and field and
what is supported; nothing is built. A ``type: vxlan`` link joins a node to a remote host
through the root namespace, which topo never builds in: between nodes of one lab, make the
VXLAN with the nodes' ``exec:`` commands (as containerlab's own VXLAN test does).

Addresses: containerlab never addresses a node's interfaces, so neither does topo here
(``autoaddress: false``): no pool addresses, and topo leaves the addresses that ``exec:``
commands set alone on re-apply. ``exec:`` commands run once inside the node, right after
the apply that created it (topo.lab.exec), as argv (split like a shell would, never run by
one; write ``sh -c '...'`` for a shell). What they change that topo declares too (a veth's
MTU or MAC) the next apply puts back; addresses, routes and their own devices stay.

Lab options, on comment lines ``# topo: key=value ...`` before the first YAML line:
``kind=docker|netns`` (what linux nodes become; default docker), ``autoaddress=true``
(address the links from topo's pools, as in topo's own YAML), ``routing=auto|none``, and
``verify=checks.yml`` (the ``verify:`` list of a YAML file beside it).
"""

from __future__ import annotations

import os
import re
import warnings

from topo.errors import Problems, field_path
from topo.load import RawLab

KINDS = ("linux", "bridge")
#: Keys a node (and ``defaults``, and a ``kinds`` entry, which has no ``kind``) may have.
NODE_KEYS = ("kind", "image", "cmd", "env", "binds", "exec")
#: Management keys, ignored with a warning.
MGMT_KEYS = ("mgmt-ipv4", "mgmt-ipv6", "mgmt_ipv4", "mgmt_ipv6")
TOP_KEYS = ("name", "mgmt", "topology")
TOPOLOGY_KEYS = ("nodes", "links", "defaults", "kinds")
#: Link types containerlab has that topo refuses, and why.
REFUSED_LINKS = {
    "host": "joins a node to the root namespace of the machine; topo builds nothing there",
    "mgmt-net": "joins a node to the management network; topo nodes have none",
    "macvlan": "joins a node to a physical interface of the machine; topo builds nothing in the root namespace",
    "vxlan": "joins a node to a remote host through the root namespace; topo builds nothing there. Between "
             "two nodes of one lab, make the VXLAN with exec: commands (ip link add vxlan0 type vxlan id VNI "
             "remote ADDRESS dstport 4789 dev eth1), or use tunnels: in topo's YAML",
    "vxlan-stitch": "joins a node to a remote host through the root namespace; topo builds nothing there",
    "dummy": "is not supported (this kernel has no dummy interfaces either)",
}
SPECIAL_NODES = {"host": "host", "mgmt-net": "mgmt-net", "macvlan": "macvlan"}
SUPPORTED = ("supported: kinds linux and bridge; node keys " + ", ".join(NODE_KEYS)
             + "; links as endpoints: [\"a:eth1\", \"b:eth1\"] or type: veth")
DIRECTIVE = re.compile(r"^#\s*topo:\s*(.*)$")
OPTIONS = "kind=docker|netns, autoaddress=true|false, routing=auto|none, verify=CHECKS.yml"


class IgnoredInput(UserWarning):
    """Part of a containerlab file that topo ignores (``mgmt``, or a linux node's image when
    it runs as a namespace). The message is ``file:line: field: what and why``; the CLI
    prints it as a warning."""


def load(path: str, text: str, problems: Problems) -> RawLab:
    """Parse containerlab ``text`` (from ``path``) into topo's raw document; problems go to
    ``problems`` (``file:line: field: message``), ignored parts are :class:`IgnoredInput`
    warnings."""
    from topo.load import yaml_format

    src = yaml_format.load(path, text, problems)
    return _Mapper(path, src, problems).run(text)


class _Mapper:
    """One containerlab document onto topo's raw document, line by line."""

    def __init__(self, path: str, src: RawLab, problems: Problems):
        self.path, self.src, self.problems = path, src, problems
        self.out = RawLab(path, {"autoaddress": False, "nodes": {}, "bridges": {}, "links": []})
        self.kind = "docker"

    # -------------------------------------------------------------- helpers
    def line(self, path: tuple) -> int | None:
        return self.src.line_of(path)

    def error(self, path: tuple, message: str) -> None:
        self.problems.add(self.line(path), field_path(path), message)

    def note(self, path: tuple, message: str) -> None:
        where = self.path if self.line(path) is None else f"{self.path}:{self.line(path)}"
        warnings.warn(IgnoredInput(f"{where}: {field_path(path)}: {message}"), stacklevel=3)

    def put(self, topo_path: tuple, clab_path: tuple) -> None:
        """Record that ``topo_path`` of the output came from ``clab_path`` of the file."""
        line = self.line(clab_path)
        if line is not None:
            self.out.lines[topo_path] = line
        self.out.fields[topo_path] = clab_path

    def mapping(self, value, path: tuple, what: str) -> dict | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a mapping")
            return None
        return value

    # -------------------------------------------------------------- document
    def run(self, text: str) -> RawLab:
        self._directives(text)
        doc = self.src.data
        if not isinstance(doc, dict) or not doc:
            return self.out
        for key in doc:
            if key not in TOP_KEYS:
                self.error((key,), f"unknown key; a containerlab file takes {', '.join(TOP_KEYS)} ({SUPPORTED})")
        if "name" in doc:
            self.out.data["name"] = doc["name"]
            self.put(("name",), ("name",))
        if "mgmt" in doc:
            self.note(("mgmt",), "ignored: topo nodes have no management network (they are reached with "
                                 "topo exec and the lab inventory)")
        topology = self.mapping(doc.get("topology"), ("topology",), "topology")
        if topology is None:
            return self.out
        if "topology" not in doc:
            self.error((), "no topology: block; a containerlab file lists its nodes under topology.nodes")
            return self.out
        for key in topology:
            if key not in TOPOLOGY_KEYS:
                self.error(("topology", key), f"unknown key; topology takes {', '.join(TOPOLOGY_KEYS)}")
        defaults = self._settings(topology.get("defaults"), ("topology", "defaults"), kind_allowed=True)
        kinds = self.mapping(topology.get("kinds"), ("topology", "kinds"), "kinds") or {}
        per_kind = {}
        for kind, settings in kinds.items():
            if kind not in KINDS:
                self.error(("topology", "kinds", kind), f"kind {kind!r} is not supported; {SUPPORTED}")
                continue
            per_kind[kind] = self._settings(settings, ("topology", "kinds", kind), kind_allowed=False)
        nodes = self.mapping(topology.get("nodes"), ("topology", "nodes"), "nodes")
        if nodes is not None and not nodes:
            self.error(("topology",), "no nodes; a lab needs at least one node under topology.nodes")
        for name, node in (nodes or {}).items():
            self._node(str(name), node, defaults or {}, per_kind)
        links = topology.get("links")
        if links is not None and not isinstance(links, list):
            self.error(("topology", "links"), "links must be a list")
        for i, link in enumerate(links if isinstance(links, list) else []):
            self._link(i, link, nodes or {})
        if not self.out.data["bridges"]:
            del self.out.data["bridges"]
        return self.out

    def _directives(self, text: str) -> None:
        for n, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if line and not line.startswith("#") and line != "---":
                break
            m = DIRECTIVE.match(line)
            if not m:
                continue
            for item in m.group(1).split():
                key, sep, value = item.partition("=")
                if not sep or key not in ("kind", "autoaddress", "routing", "verify"):
                    self.problems.add(n, "# topo:", f"unknown lab option {item!r}; known: {OPTIONS}")
                elif key == "kind":
                    if value not in ("docker", "netns"):
                        self.problems.add(n, "# topo: kind", f"{value!r}: linux nodes run as docker (containers) "
                                                             "or netns (namespaces)")
                    self.kind = value
                elif key == "autoaddress":
                    if value not in ("true", "false"):
                        self.problems.add(n, "# topo: autoaddress", f"{value!r} is not true or false")
                    self.out.data["autoaddress"] = value == "true"
                    self.out.lines[("autoaddress",)] = n
                elif key == "routing":
                    self.out.data["routing"] = value
                    self.out.lines[("routing",)] = n
                else:
                    from topo.load.csv_format import _verify_file  # the same option as a CSV's
                    _verify_file(self.out, self.path, value, n, self.problems)

    # -------------------------------------------------------------- nodes
    def _settings(self, value, path: tuple, kind_allowed: bool) -> dict | None:
        """``defaults`` or a ``kinds`` entry: ``{key: (value, clab path)}``."""
        value = self.mapping(value, path, path[-1])
        if value is None:
            return None
        out = {}
        for key, v in value.items():
            if key in MGMT_KEYS:
                self.note(path + (key,), "ignored: topo nodes have no management network")
            elif key not in NODE_KEYS or (key == "kind" and not kind_allowed):
                self.error(path + (key,), f"unknown or unsupported key; {SUPPORTED}")
            else:
                out[key] = (v, path + (key,))
        return out

    def _node(self, name: str, node, defaults: dict, per_kind: dict) -> None:
        path = ("topology", "nodes", name)
        own = self._settings(node, path, kind_allowed=True)
        if own is None:
            return
        kind, kind_path = own.get("kind") or defaults.get("kind") or (None, path)
        if kind is None:
            self.error(path, "has no kind; give kind: linux or kind: bridge (or topology.defaults.kind)")
            return
        if kind not in KINDS:
            self.error(kind_path, f"kind {kind!r} is not supported; {SUPPORTED}")
            return
        levels = [defaults, per_kind.get(kind) or {}, own]
        if kind == "bridge":  # the defaults are for the linux nodes (containerlab ignores them here too)
            for level in levels[1:]:
                for key, (_, where) in level.items():
                    if key != "kind":
                        self.error(where, f"a bridge node takes no {key}; {SUPPORTED}")
            self.out.data["bridges"][name] = {}
            self.put(("bridges", name), path)
            return
        out = {"kind": self.kind}
        self.put(("nodes", name), path)
        for key in ("image", "cmd", "exec"):
            found = next((level[key] for level in reversed(levels) if key in level), None)
            if found is not None:
                out[key] = found[0]
                self.put(("nodes", name, key), found[1])
        env = {}
        for level in levels:
            if "env" in level:
                merged = self.mapping(level["env"][0], level["env"][1], "env")
                env.update(merged or {})
                self.put(("nodes", name, "env"), level["env"][1])
        if env:
            out["env"] = env
        binds = {}
        for level in levels:
            if "binds" in level:
                value, where = level["binds"]
                if not isinstance(value, list):
                    self.error(where, "binds must be a list of HOST-PATH:CONTAINER-PATH[:ro|rw]")
                    continue
                for bind in value:
                    bind = self._bind(bind)
                    parts = bind.split(":") if isinstance(bind, str) else []
                    binds[parts[1] if len(parts) > 1 else repr(bind)] = bind
                self.put(("nodes", name, "binds"), where)
        if binds:
            out["binds"] = list(binds.values())
        if self.kind == "netns":
            dropped = [k for k in ("image", "cmd", "env", "binds") if k in out]
            for key in dropped:
                del out[key]
            if dropped:
                self.note(path, f"{', '.join(dropped)} ignored: with '# topo: kind=netns' linux nodes are "
                                "network namespaces, not containers")
        self.out.data["nodes"][name] = out

    def _bind(self, bind):
        """A bind's host path as containerlab reads it: ``~`` expanded, relative to the file."""
        if not isinstance(bind, str) or ":" not in bind:
            return bind
        host, rest = bind.split(":", 1)
        host = os.path.expanduser(host)
        if not os.path.isabs(host):
            host = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(self.path)), host))
        return f"{host}:{rest}"

    # -------------------------------------------------------------- links
    def _link(self, i: int, link, nodes: dict) -> None:
        path = ("topology", "links", i)
        if not isinstance(link, dict):
            self.error(path, f"a link is a mapping with endpoints:; {SUPPORTED}")
            return
        kind = link.get("type")
        if kind is not None and kind != "veth":
            why = REFUSED_LINKS.get(kind)
            self.error(path + ("type",), f"type {kind!r} {why}" if why else
                       f"type {kind!r} is not a containerlab link type topo takes; {SUPPORTED}")
            return
        for key in link:
            if key not in ("type", "endpoints", "mtu"):
                self.error(path + (key,), f"unknown or unsupported key; a link takes type, endpoints and mtu "
                                          f"({SUPPORTED})")
        ends = link.get("endpoints")
        if not isinstance(ends, list) or len(ends) != 2:
            self.error(path + ("endpoints",), "a link has two endpoints, e.g. [\"a:eth1\", \"b:eth1\"]")
            return
        out_ends = []
        for j, end in enumerate(ends):
            where = path + ("endpoints", j)
            if kind is None:
                if not isinstance(end, str) or end.count(":") != 1:
                    self.error(where, f"{end!r} is not NODE:INTERFACE")
                    return
                node, iface = end.split(":")
                mac = None
            else:
                if not isinstance(end, dict):
                    self.error(where, "an endpoint of a type: veth link is {node: NODE, interface: IFACE}")
                    return
                for key in end:
                    if key not in ("node", "interface", "mac"):
                        self.error(where + (key,), "unknown or unsupported key; an endpoint takes node, "
                                                   "interface and mac")
                node, iface, mac = end.get("node"), end.get("interface"), end.get("mac")
                if not isinstance(node, str) or not isinstance(iface, str):
                    self.error(where, "an endpoint needs node: and interface:")
                    return
            if node in SPECIAL_NODES and node not in nodes:
                self.error(where, f"{node}:{iface}: a {node} endpoint "
                                  f"{REFUSED_LINKS[SPECIAL_NODES[node]]}")
                return
            if node not in nodes:
                known = ", ".join(sorted(map(str, nodes))[:8]) + (" ..." if len(nodes) > 8 else "")
                self.error(where, f"unknown node {node!r} (nodes: {known or 'none'})")
                return
            topo_end = {"node": node}
            if node not in self.out.data.get("bridges", {}):
                topo_end["ifname"] = iface  # a bridge's side is topo's <node>-<ifname> port
            if mac is not None:
                topo_end["mac"] = mac
            k = len(self.out.data["links"])
            self.put(("links", k, "endpoints", j), where)
            for key, clab_key in (("ifname", "interface"), ("mac", "mac"), ("node", "node")):
                self.put(("links", k, "endpoints", j, key), where if kind is None else where + (clab_key,))
            out_ends.append(topo_end)
        k = len(self.out.data["links"])
        item = {"endpoints": out_ends}
        if "mtu" in link:
            item["mtu"] = link["mtu"]
            self.put(("links", k, "mtu"), path + ("mtu",))
        self.put(("links", k), path)
        self.out.data["links"].append(item)
