"""The one state every expansion phase reads and extends: :class:`Expansion`.

A phase is a function ``phase(x: Expansion) -> None`` that reads what earlier phases
decided, adds its own decisions to ``x``, and reports what is wrong with :meth:`Expansion.add`
(never raising); :func:`topo.expand.expand` gates on the problems between phases.

Interface ends (:class:`End`) are plain dicts, created by the segments and tunnels phases
and completed by the later ones (addresses, underlay, MTU).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import netaddr

from topo.errors import Problem, Problems, Source
from topo.model import Impairment, Lab


class End(TypedDict, total=False):
    """One interface of a node while the lab expands (the output keeps part of it).

    node, ifname: where it is; address: ``"a.b.c.d"`` or ``"a.b.c.d/len"`` as declared, then
    ``"a.b.c.d/len"`` once addressed, or None; address6: the same for IPv6 (``"x:x::x/len"``);
    mac: declared MAC or None; path: its path in
    the topology (for :meth:`Expansion.add`); segment: its segment's name; mtu: bytes or
    None (the kernel's default); kind: ``veth``, ``vxlan``, ``gre`` or ``gretap``;
    impair: the link's :class:`~topo.model.Impairment` or None; peer: ``"node:ifname"`` or
    ``"bridge:port"``. Tunnel ends also have bridge (the bridge they plug into, or None),
    local and remote (underlay IPv4 or IPv6 addresses, no length).
    """

    node: str
    ifname: str
    address: str | None
    address6: str | None
    mac: str | None
    path: tuple
    segment: str
    mtu: int | None
    kind: str
    impair: Impairment | None
    peer: str
    bridge: str | None
    local: str | None
    remote: str


class Segment:
    """An L2 segment: a bridge with its ports (``kind`` ``lan``; several bridges when tunnels
    join them), or a point-to-point veth or tunnel link (``p2p``).

    ``path`` is where it is declared; ``subnet`` (netaddr.IPNetwork or None until
    addressing) came from ``subnet_path``, ``subnet6`` (IPv6) from ``subnet6_path``; ``members`` are the :class:`End` s on it;
    ``tunnels`` the indexes of the tunnels its L2 or L3 path rides on.
    """

    __slots__ = ("name", "kind", "path", "bridge", "subnet", "subnet_path", "subnet6", "subnet6_path",
                 "members", "bridges", "tunnels")

    def __init__(self, name: str, kind: str, path: tuple, bridge: str | None = None):
        self.name, self.kind, self.path, self.bridge = name, kind, path, bridge
        self.subnet: netaddr.IPNetwork | None = None
        self.subnet_path: tuple = path
        self.subnet6: netaddr.IPNetwork | None = None
        self.subnet6_path: tuple = path
        self.members: list[End] = []
        self.bridges: list[str] = []
        self.tunnels: set[int] = set()


@dataclass
class Expansion:
    """Everything one expansion has decided so far, phase by phase.

    Inputs: ``lab`` (validated, with ``lab.source``), ``prior`` (the allocation of an
    earlier expansion to keep, see :func:`topo.expand.previous_allocation`), ``problems``.

    Decided by the phases (in order): ``used_ifnames`` ``{node: {ifname: path}}`` and
    ``resolved`` links ``[(node ends, bridge or None)]`` (names); ``segments``
    ``{name: Segment}``, ``seg_of_bridge`` ``{bridge: segment name}``, ``ifaces``
    ``{node: [End]}``, ``veths`` (output shape), ``bridge_impairments``
    ``[(netns, port, Impairment)]`` (segments); ``tunnel_ends`` ``[[End, End]]`` per tunnel
    (tunnels); ``taken`` explicit IPv4 subnets ``[(net, what, path)]``, ``taken6`` the IPv6
    ones, ``loopbacks`` ``{node: "a.b.c.d/32"}`` and ``loopbacks6`` ``{node: "x:x::x/128"}``
    (addressing); ``routes`` ``{node: {dst: gateway}}`` (both families; gateway None for a
    route through a device only) and ``route_devs`` ``{node: {dst: dev}}`` of the declared
    ``dev:`` routes, ``reach``
    ``{node: {node}}``, ``reach_segments`` ``{node: {segment or "lo:<node>"}}`` whose IPv4
    addresses it reaches, ``reach_segments6`` the same for IPv6 (routing); ``out_nodes``
    (output shape of nodes, which the checks read). ``v6``: whether the lab has IPv6
    (:attr:`topo.model.Lab.has_ipv6`; only then does the output have the IPv6 keys).

    Several build hosts (``hosts``, ``{name: vars}`` of the build-host inventory, in its
    order): ``placement`` ``{node: host}`` (placement); ``bridge_hosts`` ``{bridge: [host]}``,
    ``veth_hosts`` (the host of each of ``veths``, same order) and ``stitches`` (the VXLAN
    devices that join hosts, output shape) (stitching), avoiding ``foreign_vnis``
    ``{VNI: lab}`` (other labs' on the same hosts). One host: placement alone.
    """

    lab: Lab
    prior: dict
    problems: Problems
    used_ifnames: dict[str, dict[str, tuple]] = field(default_factory=dict)
    resolved: list[tuple[list, str | None]] = field(default_factory=list)
    segments: dict[str, Segment] = field(default_factory=dict)
    seg_of_bridge: dict[str, str] = field(default_factory=dict)
    ifaces: dict[str, list[End]] = field(default_factory=dict)
    veths: list[dict] = field(default_factory=list)
    bridge_impairments: list[tuple[str, str, Impairment]] = field(default_factory=list)
    tunnel_ends: list[list[End]] = field(default_factory=list)
    taken: list[tuple[netaddr.IPNetwork, str, tuple]] = field(default_factory=list)
    loopbacks: dict[str, str] = field(default_factory=dict)
    taken6: list[tuple[netaddr.IPNetwork, str, tuple]] = field(default_factory=list)
    loopbacks6: dict[str, str] = field(default_factory=dict)
    routes: dict[str, dict[str, str | None]] = field(default_factory=dict)
    route_devs: dict[str, dict[str, str]] = field(default_factory=dict)
    reach: dict[str, set[str]] = field(default_factory=dict)
    reach_segments: dict[str, set[str]] = field(default_factory=dict)
    reach_segments6: dict[str, set[str]] = field(default_factory=dict)
    out_nodes: dict[str, dict] = field(default_factory=dict)
    hosts: dict[str, dict] = field(default_factory=lambda: {"localhost": {}})
    placement: dict[str, str] = field(default_factory=dict)
    bridge_hosts: dict[str, list[str]] = field(default_factory=dict)
    veth_hosts: list[str] = field(default_factory=list)
    stitches: list[dict] = field(default_factory=list)
    foreign_vnis: dict[int, str] = field(default_factory=dict)

    v6: bool = False
    #: What is built anyway but will not behave as a user may expect, ``file:line: field: message``.
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.v6 = self.lab.has_ipv6

    @property
    def source(self) -> Source:
        """The topology's file and line map (``lab.source``)."""
        return self.lab.source

    def where(self, path) -> int | None:
        """The 1-based line of ``path`` (or of its nearest ancestor) in the topology file."""
        return self.lab.source.where(path)

    def add(self, path: tuple, message: str, field: tuple | None = None) -> None:
        """Report ``message`` at the line of ``path``, naming ``field`` (default: ``path``)
        as ``a[1].b``."""
        self.problems.add(self.where(path), self.source.name(path if field is None else field), message)

    def warn(self, path: tuple, message: str) -> None:
        """Record a warning at the line of ``path`` (formatted as a problem; nothing stops)."""
        self.warnings.append(str(Problem(self.source.file, self.where(path), self.source.name(path), message)))

    def gate(self, phase: str) -> None:
        """Raise InputError (exit 2) with every problem so far, naming ``phase``, if any."""
        self.problems.gate(phase)
