"""CSV topologies: a spreadsheet-friendly edge list, one row per link.

Columns (header row required, order free, unknown columns are an error):

==============  ===================================================================
node            the node at this end of the link (required on every row)
ifname          its interface name (default: eth0, eth1, ... in row order)
address         its address, ``a.b.c.d/len`` or ``a.b.c.d``, IPv6 ``x:x::x/len``, or one of
                each separated by a space (default: from a pool)
peer            the node at the other end: a point-to-point veth link
peer_ifname     the peer's interface name
peer_address    the peer's address (as ``address``)
bridge          instead of ``peer``: the bridge (LAN) this node is plugged into
subnet          the link's or the bridge's subnet, ``a.b.c.d/len``, ``x:x::/len`` or both
                separated by a space
mtu             MTU of the link in bytes (default 1500)
groups          groups of ``node``, separated by ``;`` or spaces (Ansible groups)
forwarding      ``true`` makes ``node`` a router (IPv4 forwarding on)
kind            what ``node`` is: ``netns`` (default, a network namespace) or ``docker`` (a container)
image           the image of a docker ``node`` (default topo-node:latest)
host            the build host ``node`` is placed on (default: placed automatically)
type            ``veth`` (default), or a tunnel to ``peer``: ``vxlan``, ``gre``, ``gretap``
vni             the VXLAN network identifier (vxlan rows)
dstport         the VXLAN UDP port (default 4789)
key             the GRE key (gre and gretap rows)
peer_bridge     on a tunnel row: the bridge inside ``peer`` that its end joins
local           on a tunnel row: the underlay address ``node``'s end leaves from
remote          on a tunnel row: the underlay address ``node``'s end sends to (``peer``'s
                local); with no ``peer``, an outside peer that topo does not build
delay           impairment on both ends: one-way delay in ms
jitter          delay variation in ms (needs delay)
loss            packet loss in percent
rate            rate limit: bits per second, or 500kbit, 20mbit, 1gbit
==============  ===================================================================

A row with neither ``peer`` nor ``bridge`` declares the node alone (with its groups).
On a tunnel row, ``bridge`` is the bridge inside ``node`` that the tunnel's end joins (an
L2 tunnel); a bridge named there lives inside that node. A tunnel row with ``remote`` and
no ``peer`` is a tunnel with one end in the lab (its other end is outside: see the YAML
``remote:``).
Lines starting with ``#`` are comments; a comment ``# topo: key=value ...`` before the
header sets lab options: ``name``, ``routing`` (``auto`` or ``none``), ``af`` (the address
families the pools hand out: ``ipv4``, ``ipv6`` or ``ipv4,ipv6``), ``mtu_check``
(``strict`` or ``warn``: see the YAML key), the node defaults
``kind`` and ``image`` (``# topo: name=lab1 kind=docker`` makes every node a container), and
``verify=checks.yml``: the lab's checks, from the ``verify:`` list of a YAML file beside it.
The result is the same raw document the YAML loader makes, so both load into one model.
"""

from __future__ import annotations

import csv
import io
import re

from topo.errors import Problems
from topo.load import RawLab

COLUMNS = ("node", "ifname", "address", "peer", "peer_ifname", "peer_address", "bridge",
           "subnet", "mtu", "groups", "forwarding", "type", "vni", "dstport", "key", "peer_bridge",
           "delay", "jitter", "loss", "rate", "kind", "image", "host", "local", "remote")
TUNNEL_TYPES = ("vxlan", "gre", "gretap")
IMPAIRMENTS = ("delay", "jitter", "loss", "rate")
#: Rows accepted; more is refused (a 100,000-row file is not a lab, and memory stays bounded).
MAX_ROWS = 20_000
#: Size limit of a ``verify=`` checks file.
MAX_VERIFY_BYTES = 1_000_000
DIRECTIVE = re.compile(r"^#\s*topo:\s*(.*)$")
TRUE = {"true", "yes", "1", "on"}
FALSE = {"false", "no", "0", "off", ""}


def load(path: str, text: str, problems: Problems) -> RawLab:
    """Parse CSV ``text`` into the YAML-shaped raw document."""
    lab = RawLab(path, {"nodes": {}, "bridges": {}, "links": [], "tunnels": []})
    nodes, bridges, links = lab.data["nodes"], lab.data["bridges"], lab.data["links"]
    lines = text.splitlines()
    body_start = 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            body_start = i
            break
        m = DIRECTIVE.match(line.strip())
        if m:
            for item in m.group(1).split():
                key, sep, value = item.partition("=")
                if not sep or key not in ("name", "routing", "kind", "image", "verify", "af", "mtu_check"):
                    problems.add(i + 1, "# topo:", f"unknown lab option {item!r}; known: name=NAME, "
                                                   "routing=auto|none, kind=netns|docker, image=IMAGE, "
                                                   "verify=CHECKS.yml, af=ipv4,ipv6, mtu_check=strict|warn")
                    continue
                if key == "verify":
                    _verify_file(lab, path, value, i + 1, problems)
                    continue
                if key in ("kind", "image"):
                    lab.data.setdefault("defaults", {})[key] = value
                    lab.lines[("defaults", key)] = i + 1
                    lab.lines.setdefault(("defaults",), i + 1)
                    continue
                lab.data[key] = value.split(",") if key == "af" else value
                lab.lines[(key,)] = i + 1
    else:
        problems.add(None, "", "no header row; the first row names the columns, e.g. node,peer,bridge,address")
        return lab

    numbered = [(n + 1, line) for n, line in enumerate(lines) if n >= body_start
                and not line.lstrip().startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(line for _, line in numbered)), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except (csv.Error, StopIteration) as exc:
        problems.add(numbered[0][0] if numbered else None, "header", f"malformed header row: {exc}")
        return lab
    header_line = numbered[0][0]
    unknown = [h for h in header if h not in COLUMNS]
    for h in unknown:
        problems.add(header_line, f"column {h!r}", f"unknown column; known columns: {', '.join(COLUMNS)}")
    if "node" not in header:
        problems.add(header_line, "header", "missing the required column 'node'")
    dupes = {h for h in header if header.count(h) > 1}
    for h in sorted(dupes):
        problems.add(header_line, f"column {h!r}", "appears more than once in the header")
    if unknown or dupes or "node" not in header:
        return lab

    row_index = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.add(numbered[min(reader.line_num, len(numbered)) - 1][0], "row", f"malformed CSV: {exc}")
            break
        row_index += 1
        line = numbered[min(reader.line_num, len(numbered)) - 1][0]
        if row_index > MAX_ROWS:
            problems.add(line, "row", f"more than {MAX_ROWS} rows; refused")
            break
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            problems.add(line, "row", f"has {len(cells)} cells, the header has {len(header)} columns")
            continue
        row = {h: c.strip() for h, c in zip(header, cells)}
        _row(lab, row, line, problems, nodes, bridges, links)
    if not nodes:
        problems.add(None, "", "no rows; a CSV topology needs at least one row with a node")
    if not lab.data["tunnels"]:
        del lab.data["tunnels"]
    return lab


def _verify_file(lab, path, name, line, problems):
    """``# topo: verify=checks.yml``: the lab's ``verify:`` checks from a YAML file next to
    the CSV (its top-level ``verify:`` list), since a row cannot hold them. The file is read
    by the YAML topology loader; its problems name it and its lines."""
    import os

    if os.path.isabs(name) or ".." in name.split("/") or not name.endswith((".yml", ".yaml")):
        problems.add(line, "# topo: verify", f"{name!r}: give a .yml file beside the CSV (a relative name, no ..)")
        return
    full = os.path.join(os.path.dirname(path), name)
    lab.sources.append(full)
    try:
        with open(full) as f:
            text = f.read(MAX_VERIFY_BYTES + 1)
    except OSError as exc:
        problems.add(line, "# topo: verify", f"cannot read {name}: {exc.strerror}")
        return
    if len(text) > MAX_VERIFY_BYTES:
        problems.add(line, "# topo: verify", f"{name} is larger than {MAX_VERIFY_BYTES} bytes; refused")
        return
    from topo.load import yaml_format  # the YAML loader of topologies: same keys, same limits
    sub = Problems(full)
    data = yaml_format.load(full, text, sub).data
    problems.items += sub.items
    checks = data.get("verify") if isinstance(data, dict) else None
    if not isinstance(checks, list):
        problems.add(line, "# topo: verify", f"{name} has no verify: list of checks")
        return
    lab.data["verify"] = checks
    lab.lines[("verify",)] = line


def _node_attribute(lab, problems, line, name, col, value, cell):
    """Set node ``name``'s attribute ``col`` to ``value`` (from ``cell`` on ``line``). A node
    appears on many rows; an attribute given on two of them must agree, and a conflict is
    reported naming both rows (never last-row-wins)."""
    node = lab.data["nodes"][name]
    if col in node and node[col] != value:
        given = str(node[col]).lower() if isinstance(node[col], bool) else node[col]
        problems.add(line, f"column {col!r}", f"{cell!r} conflicts with {given!r}, given for {name} on line "
                                              f"{lab.lines[('nodes', name, col)]}")
        return
    node[col] = value
    lab.lines.setdefault(("nodes", name, col), line)


def _row(lab, row, line, problems, nodes, bridges, links):
    name = row.get("node", "")
    if not name:
        problems.add(line, "column 'node'", "is empty; every row names a node")
        return
    node = nodes.setdefault(name, {})
    lab.lines.setdefault(("nodes", name), line)
    groups = [g for g in re.split(r"[;\s]+", row.get("groups", "")) if g]
    if groups:
        node.setdefault("groups", [])
        node["groups"] += [g for g in groups if g not in node["groups"]]
        lab.lines.setdefault(("nodes", name, "groups"), line)
    fwd = row.get("forwarding", "").lower()
    if fwd and fwd not in TRUE | FALSE:
        problems.add(line, "column 'forwarding'", f"{row['forwarding']!r} is not true or false")
    elif fwd:
        _node_attribute(lab, problems, line, name, "forwarding", fwd in TRUE, row["forwarding"])
    for col in ("kind", "image", "host"):
        if row.get(col, ""):
            _node_attribute(lab, problems, line, name, col, row[col], row[col])

    kind = row.get("type", "").lower() or "veth"
    if kind in TUNNEL_TYPES:
        _tunnel_row(lab, row, line, problems, kind)
        return
    if kind != "veth":
        problems.add(line, "column 'type'", f"{row['type']!r} is not one of: veth, {', '.join(TUNNEL_TYPES)}")
        return
    for col in ("vni", "dstport", "key", "peer_bridge", "local", "remote"):
        if row.get(col):
            problems.add(line, f"column {col!r}", "is for tunnel rows (type vxlan, gre or gretap)")
    peer, bridge = row.get("peer", ""), row.get("bridge", "")
    if peer and bridge:
        problems.add(line, "column 'bridge'", "a row has either a peer (point-to-point) or a bridge, not both")
        return
    if not peer and not bridge:
        for col in ("ifname", "address", "peer_ifname", "peer_address", "subnet", "mtu"):
            if row.get(col):
                problems.add(line, f"column {col!r}", "needs a 'peer' or 'bridge' on the same row")
        return
    index = len(links)
    a = {"node": name}
    for col, key in (("ifname", "ifname"), ("address", "address")):
        if row.get(col):
            a[key] = row[col]
    if bridge:
        b = {"node": bridge}
        if bridge not in bridges:
            bridges[bridge] = {}
            lab.lines[("bridges", bridge)] = line
        if row.get("subnet"):
            prev = bridges[bridge].get("subnet")
            if prev and prev != row["subnet"]:
                problems.add(line, "column 'subnet'", f"bridge {bridge!r} already has subnet {prev}")
            bridges[bridge]["subnet"] = row["subnet"]
            lab.lines.setdefault(("bridges", bridge, "subnet"), line)
        for col in ("peer_ifname", "peer_address"):
            if row.get(col):
                problems.add(line, f"column {col!r}", "is for point-to-point rows (with 'peer'), not bridge rows")
    else:
        nodes.setdefault(peer, {})
        lab.lines.setdefault(("nodes", peer), line)
        b = {"node": peer}
        if row.get("peer_ifname"):
            b["ifname"] = row["peer_ifname"]
        if row.get("peer_address"):
            b["address"] = row["peer_address"]
    link = {"endpoints": [a, b]}
    if row.get("subnet") and not bridge:
        link["subnet"] = row["subnet"]
    _numbers(row, link, ("mtu",), line, problems)
    _impair(row, link, ("links", index), lab, line, problems)
    links.append(link)
    lab.lines[("links", index)] = line


def _numbers(row, into, columns, line, problems):
    for col in columns:
        if row.get(col):
            try:
                into[col] = int(row[col])
            except ValueError:
                problems.add(line, f"column {col!r}", f"{row[col]!r} is not a whole number")


def _impair(row, item, path, lab, line, problems):
    impair = {}
    for col in IMPAIRMENTS:
        if row.get(col):
            if col == "rate":
                impair[col] = row[col]
                continue
            try:
                impair[col] = float(row[col].removesuffix("ms").removesuffix("%"))
            except ValueError:
                problems.add(line, f"column {col!r}", f"{row[col]!r} is not a number")
    if impair:
        item["impair"] = impair
        lab.lines[path + ("impair",)] = line


def _tunnel_row(lab, row, line, problems, kind):
    """A tunnel from ``node`` to ``peer`` (or, with ``remote`` and no ``peer``, to an outside
    peer); a bridge named on either end lives in that node. ``local`` and ``remote`` are
    ``node``'s end's underlay addresses."""
    name, peer = row["node"], row.get("peer", "")
    if not peer and not row.get("remote"):
        problems.add(line, "column 'peer'", f"a {kind} row needs the peer node at the tunnel's other end "
                                            "(or, for a peer outside the lab, its underlay address in 'remote')")
        return
    if not peer:
        for col in ("peer_ifname", "peer_address", "peer_bridge"):
            if row.get(col):
                problems.add(line, f"column {col!r}", "needs a 'peer' on the same row (a remote with no peer "
                                                      "is outside the lab: topo builds only this end)")
    else:
        lab.data["nodes"].setdefault(peer, {})
        lab.lines.setdefault(("nodes", peer), line)
    index = len(lab.data["tunnels"])
    ends = []
    for node, ifcol, addrcol, brcol in ((name, "ifname", "address", "bridge"),
                                        (peer, "peer_ifname", "peer_address", "peer_bridge"))[:2 if peer else 1]:
        end = {"node": node}
        for col, key in ((ifcol, "ifname"), (addrcol, "address"), (brcol, "bridge")):
            if row.get(col):
                end[key] = row[col]
        if row.get(brcol):
            bridge = lab.data["bridges"].setdefault(row[brcol], {})
            lab.lines.setdefault(("bridges", row[brcol]), line)
            if bridge.get("node", node) != node:
                problems.add(line, f"column {brcol!r}", f"bridge {row[brcol]!r} is already inside node "
                                                        f"{bridge['node']}; a bridge lives in one node")
            bridge["node"] = node
        ends.append(end)
    ends[0].update({col: row[col] for col in ("local", "remote") if row.get(col)})
    tunnel = {"type": kind, "endpoints": ends}
    if row.get("subnet"):
        tunnel["subnet"] = row["subnet"]
    _numbers(row, tunnel, ("vni", "dstport", "key", "mtu"), line, problems)
    _impair(row, tunnel, ("tunnels", index), lab, line, problems)
    lab.data["tunnels"].append(tunnel)
    lab.lines[("tunnels", index)] = line
