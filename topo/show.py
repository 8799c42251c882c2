"""Read a lab's real state from the kernel (``topo show``), beside what the file declares.

Uses the same netlink helpers as the modules (``topo.lab``'s public ``module_utils.api``), so
what ``show`` calls "up" is what ``apply`` compares.
"""

from __future__ import annotations

from ansible_collections.topo.lab.plugins.module_utils import api as nl


def observe(expanded: dict) -> list[dict]:
    """Per node: {node, kind, netns, state, interfaces: [{ifname, address, peer, state, observed}]}.

    A node's state is ``up`` or ``missing``; an interface's is ``up``, ``down``, ``missing``,
    or ``drift: <what>`` when its addresses or MTU differ from the declared ones (in a lab with
    ``autoaddress: false``, an interface with no declared address has whatever its node's
    ``exec:`` commands set: its addresses are observed, never drift).
    """
    managed = expanded.get("autoaddress", True)
    outside = outside_peers(expanded)
    declared = {(i["netns"], i["ifname"]): i for i in expanded.get("impairments", [])}
    rows = []
    with nl.Sockets() as socks:
        for name, node in expanded["nodes"].items():
            row = {"node": name, "kind": node["kind"], "netns": node["netns"], "interfaces": []}
            exists = nl.namespace_exists(node["netns"])
            row["state"] = "up" if exists else "missing"
            links, addrs, qdiscs = {}, {}, {}
            if exists:
                ipr = socks.get(node["netns"])
                links = nl.links_by_name(ipr)
                for index, cidr in nl.ip_addresses(ipr):
                    addrs.setdefault(index, []).append(cidr)
                if any(link.get("qdisc") in ("netem", "tbf") for link in links.values()):
                    qdiscs = nl.read_qdiscs(ipr)
            row["interfaces"] = interface_rows(node, {
                ifname: {"addresses": sorted(a for a in addrs.get(have["index"], []) if a not in LOOPBACK),
                         "mtu": have["mtu"], "up": have["up"],
                         "impair": nl.impairment_shape(*qdiscs.get(have["index"], (None, None))) or {}}
                for ifname, have in links.items()}, managed,
                impairments={i["ifname"]: declared.get((node["netns"], i["ifname"]), {}) for i in node["interfaces"]},
                outside=outside)
            rows.append(row)
    return rows


#: What every namespace's ``lo`` has whatever the lab declares: not the lab's, never drift.
LOOPBACK = ("127.0.0.1/8", "::1/128")


#: The keys of an impairment a file declares (topo.lab.impair's), compared by ``show``.
IMPAIR_KEYS = ("delay", "jitter", "loss", "rate")


def outside_peers(expanded: dict) -> dict[tuple[str, str], str]:
    """``{(netns, ifname): remote}`` of the tunnel ends whose peer is outside the lab (a
    one-ended tunnel: its interface's ``peer`` is None, its device's ``remote`` the outside
    peer's underlay address)."""
    ends = {(node["netns"], i["ifname"]) for node in expanded["nodes"].values()
            for i in node["interfaces"] if i["peer"] is None}
    return {(t["netns"], t["ifname"]): t["remote"] for t in expanded.get("tunnels", [])
            if (t["netns"], t["ifname"]) in ends}


def interface_rows(node: dict, observed: dict, managed: bool = True, impairments: dict | None = None,
                   outside: dict[tuple[str, str], str] | None = None) -> list[dict]:
    """The interface entries of a ``show`` row: each declared interface of ``node`` (and
    ``lo`` with its loopback and anycast addresses) against ``observed`` ``{ifname:
    {addresses (sorted CIDRs of both families, without :data:`LOOPBACK` and the kernel's own
    IPv6 addresses), mtu, up}}`` read from its namespace. An entry has ``address6`` in a lab
    with IPv6. ``managed`` False (a lab with ``autoaddress: false``): what is on an
    interface without a declared address is the nodes' ``exec:`` commands' business, not
    drift. ``impairments`` (``{ifname: {delay, jitter, loss, rate}}``, the declared ones;
    None: not compared) against the observed ``impair`` (topo's qdisc read back as the impair
    module reads it, ``{}`` for none): a difference beyond the kernel's rounding is drift
    ``impair <what the kernel has>`` (e.g. after ``topo impair``).``outside`` (:func:`outside_peers`): a tunnel end whose
    peer is outside the lab shows ``outside ADDRESS`` as its peer."""
    declared = list(node["interfaces"])
    on_lo = [a for a in (node["loopback"], node.get("loopback6")) if a] + list(node.get("anycast") or [])
    if on_lo:
        declared.append({"ifname": "lo", "address": node["loopback"], "peer": "", "mtu": None, "lo": on_lo,
                         **({"address6": node["loopback6"]} if "loopback6" in node else {})})
    out = []
    for iface in declared:
        have = observed.get(iface["ifname"])
        peer = iface["peer"]
        if peer is None and (node["netns"], iface["ifname"]) in (outside or {}):
            peer = f"outside {outside[(node['netns'], iface['ifname'])]}"
        entry = {"ifname": iface["ifname"], "address": iface["address"],
                 **({"address6": iface["address6"]} if "address6" in iface else {}), "peer": peer}
        if have is None:
            entry["state"], entry["observed"] = "missing", None
        else:
            got = have["addresses"]
            want = sorted(iface.get("lo") or [a for a in (iface["address"], iface.get("address6")) if a])
            entry["observed"] = dict(have)
            drift = []
            if got != want and (managed or want):
                drift.append(f"addresses {', '.join(got) or 'none'}")
            if iface.get("mtu") and have["mtu"] != iface["mtu"]:
                drift.append(f"mtu {have['mtu']}")
            if impairments is not None and "impair" in have and iface["ifname"] in impairments:
                got_imp = {k: v for k, v in have["impair"].items() if k != "burst"}
                want_imp = {k: float(v) if k != "rate" else v for k in IMPAIR_KEYS
                            if (v := impairments[iface["ifname"]].get(k))}
                if nl.impairment_differences(got_imp, want_imp):
                    drift.append(f"impair {nl.describe_impairment(got_imp)}")
            entry["state"] = ("drift: " + "; ".join(drift)) if drift else ("up" if have["up"] else "down")
        out.append(entry)
    return out


def labs_in_docker() -> list[str]:
    """Names of labs that own at least one container (label ``topo.lab``), when a dockerd answers."""
    return sorted(set((lab_containers() or {}).values()))


def lab_containers() -> dict[str, str] | None:
    """``{container name: lab}`` of every container labelled ``topo.lab``; None when no
    dockerd answers (nothing can be said about containers then)."""
    from topo.doctor import docker_client_or_none
    client = docker_client_or_none()
    if client is None:
        return None
    return {c["Names"][0].lstrip("/"): c["Labels"][nl.LAB_LABEL]
            for c in client.api.containers(all=True, filters={"label": nl.LAB_LABEL})}
