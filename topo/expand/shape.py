"""The expanded lab's shape: every key it has, with units (DESIGN.md 3).

The expanded lab is plain data (dicts, lists, str, int, float, bool, None), what
``expanded.yml`` and the unit snapshots hold and what :func:`topo.inventory.project` reads.
These TypedDicts document it; they are annotations only, the data stays plain dicts. Keys
appear in the order written here (the YAML keeps insertion order). Addresses are IPv4:
``"a.b.c.d/len"`` for an interface or subnet, ``"a.b.c.d"`` (no length) for a next hop, a
tunnel's underlay or a check's target. MTUs are bytes (None: the kernel's default, 1500).
"""

from typing import Literal, NotRequired, TypedDict, Union


class Interface(TypedDict):
    """One interface of a node. kind: ``veth``, ``vxlan``, ``gre`` or ``gretap``; address:
    ``a.b.c.d/len`` or None (a tunnel end plugged into a bridge); segment: the segment's
    name; peer: ``node:ifname`` (the other end) or ``bridge:port`` (the bridge-side veth)."""

    ifname: str
    kind: str
    address: str | None
    mtu: int | None
    segment: str
    peer: str


class Route(TypedDict):
    """A static route: dst ``a.b.c.d/len`` (``0.0.0.0/0`` the default) via gateway ``a.b.c.d``."""

    dst: str
    gateway: str


class Container(TypedDict):
    """A docker node's container: image reference, cmd (argv or None: the image's),
    env ``{NAME: value}`` (strings), binds ``["host:container[:ro]"]``."""

    image: str
    cmd: list[str] | None
    env: dict[str, str]
    binds: list[str]


class Node(TypedDict):
    """A node. kind: ``netns`` or ``docker``; netns: its namespace (docker: also the
    container's name), ``topo-<lab>-<node>``; groups: declared Ansible groups; sysctls:
    ``{name: "value"}`` with ``net.ipv4.ip_forward`` always set; loopback: ``a.b.c.d/32`` or
    None; routes in order (most specific network first, the default last); anycast: the
    ``a.b.c.d/32`` addresses it shares with other nodes on ``lo`` (only when it has some);
    container: docker nodes only."""

    kind: str
    netns: str
    groups: list[str]
    forwarding: bool
    sysctls: dict[str, str]
    loopback: str | None
    interfaces: list[Interface]
    routes: list[Route]
    anycast: NotRequired[list[str]]
    container: NotRequired[Container]


class Bridge(TypedDict):
    """A Linux bridge. netns: where it lives (its node's, or its own ``topo-<lab>-<bridge>``);
    node: the node it lives in or None; ifname: the device, named after the bridge; subnet:
    its segment's ``a.b.c.d/len``; mtu: bytes or None; mcast_snooping / mcast_querier:
    IGMP snooping and querier on the bridge; ports: bridge-side veth ends and tunnel ends
    plugged in, in link order."""

    netns: str
    node: str | None
    ifname: str
    subnet: str | None
    segment: str
    mtu: int | None
    mcast_snooping: bool
    mcast_querier: bool
    ports: list[str]


class Segment(TypedDict):
    """An L2 segment. kind: ``lan`` (bridges) or ``p2p``; members: ``node:ifname`` of the
    addressed interfaces on it; bridges and tunnels (indexes into ``tunnels:`` of the topology)
    only when tunnels carry it or join several bridges."""

    kind: Literal["lan", "p2p"]
    subnet: str | None
    members: list[str]
    bridges: NotRequired[list[str]]
    tunnels: NotRequired[list[int]]


class VethEnd(TypedDict):
    """One end of a veth pair: netns, ifname, mtu (bytes or None), mac (lower case, only
    when declared), master (the bridge it is plugged into, bridge-side ends only)."""

    netns: str
    ifname: str
    mtu: int | None
    mac: NotRequired[str]
    master: NotRequired[str]


class Veth(TypedDict):
    """A veth pair; ``a`` is a node's end, ``b`` the other node's or the bridge's."""

    a: VethEnd
    b: VethEnd


class Tunnel(TypedDict):
    """One tunnel device (two per tunnel, one per end). kind: ``vxlan``, ``gre`` or
    ``gretap``; local / remote: underlay ``a.b.c.d``; mtu: bytes (underlay path MTU minus the
    encapsulation, unless declared); master: bridge it is plugged into or None; ttl: outer
    TTL or None (inherit). VXLAN: vni, dstport (UDP), srcport ``[low, high]`` or None,
    learning. GRE/gretap: key (32-bit) or None."""

    kind: str
    netns: str
    ifname: str
    local: str
    remote: str
    mtu: int
    master: str | None
    ttl: int | None
    vni: NotRequired[int]
    dstport: NotRequired[int]
    srcport: NotRequired[list[int] | None]
    learning: NotRequired[bool]
    key: NotRequired[int | None]


class Impairment(TypedDict):
    """Egress impairment of one interface (tc netem / tbf). delay and jitter in
    milliseconds, loss in percent, rate in bits per second; None: not impaired that way."""

    netns: str
    ifname: str
    delay: float | None
    jitter: float | None
    loss: float | None
    rate: int | None


class PingTarget(TypedDict):
    """An address ``a.b.c.d`` of ``node`` that must answer (``pass``) or not (``fail``)."""

    node: str
    address: str
    expect: Literal["pass", "fail"]


#: Pings from node ``from`` to ``targets`` (one check per source node). Functional form:
#: ``from`` is a Python keyword.
PingCheck = TypedDict("PingCheck", {"type": Literal["ping"], "from": str, "targets": list[PingTarget]})


class Traffic(TypedDict):
    """A program run in namespace ``netns`` while a capture listens: ``argv``."""

    netns: str
    argv: list[str]


class CaptureCheck(TypedDict):
    """tcpdump on ``node``'s ``interface`` (in ``netns``) with BPF ``filter`` (or None)
    while ``traffic`` runs; ``expect`` is the capture check's ``expect:`` (layers, vni,
    min_packets, ...) plus inner_src / inner_dst when it expects an encapsulation; name:
    ``<node>-<ifname>-<index in verify>``."""

    type: Literal["capture"]
    name: str
    node: str
    interface: str
    netns: str
    filter: str | None
    traffic: list[Traffic]
    description: str
    expect: dict


class Participant(TypedDict):
    """A node taking part in a cast or iperf3 check: its namespace, its container (docker
    nodes) or None, and the ``a.b.c.d`` it sends from and is reached at. Multicast senders
    and members add ``interface`` (an ``a.b.c.d`` or None), silent listeners ``join``
    (groups), anycast clients ``expect`` (the server that must answer)."""

    node: str
    netns: str
    container: str | None
    address: str | None
    interface: NotRequired[str | None]
    join: NotRequired[list[str]]
    expect: NotRequired[str]


class CastCapture(TypedDict):
    """Where a cast or iperf3 check captures: tcpdump on ``node``'s ``interface`` (in
    ``netns``; docker nodes: also ``container``) with BPF ``filter`` or None."""

    node: str
    interface: str
    netns: str
    container: str | None
    filter: str | None


class CastCheck(TypedDict, total=False):
    """A cast check, run by the topo.lab.cast module. Always: type (``unicast``,
    ``broadcast``, ``multicast``, ``anycast`` or ``relay``), name, description, timeout
    (seconds), payloads (what is sent, see the module), capture (when asked for). Per type: unicast: proto, sender,
    receiver, address, port, expect; broadcast: sender, address (``255.255.255.255`` or
    the directed broadcast), port, receivers, silent; multicast: group, port, ttl,
    senders, members, silent, leave (node names), ack; anycast: address, port, protos,
    servers, clients; relay: sender, relay, address, port, out_address, out_port,
    receivers, silent. Ports are UDP/TCP port numbers."""

    type: str
    name: str
    description: str
    family: Literal[6]  # only on IPv6 checks (absent: IPv4)
    timeout: float
    payloads: list[dict]
    capture: CastCapture
    proto: str
    sender: Participant
    receiver: Participant
    relay: Participant
    senders: list[Participant]
    receivers: list[Participant]
    members: list[Participant]
    silent: list[Participant]
    servers: list[Participant]
    clients: list[Participant]
    address: str
    port: int
    out_address: str
    out_port: int
    group: str
    ttl: int
    leave: list[str]
    ack: bool
    protos: list[str]
    expect: str


class IperfCheck(TypedDict):
    """An iperf3 run (topo.lab.iperf) from ``client`` to ``server`` at ``address``:
    proto ``tcp``/``udp``, duration (seconds), parallel streams, lengths (bytes per write,
    one run each; [] the default), bitrate (bits per second or None: unlimited for TCP),
    min_bps (bits per second the run must reach, or None), port."""

    type: Literal["iperf3"]
    name: str
    description: str
    family: NotRequired[Literal[6]]  # only on IPv6 checks (absent: IPv4)
    client: Participant
    server: Participant
    address: str
    proto: str
    duration: int
    parallel: int
    lengths: list[int]
    bitrate: int | None
    min_bps: float | None
    port: int
    capture: NotRequired[CastCapture]


Check = Union[PingCheck, CaptureCheck, CastCheck, IperfCheck]


class Expanded(TypedDict):
    """The expanded lab. lab: its name; routing: ``auto`` or ``none``; features: kernel
    features it needs (tunnel types, ``netem``, ``tbf``), sorted; nodes and bridges by
    name in declaration order; segments by name; veths, tunnels and impairments in link
    order; checks: pings first (by source node), then the others in ``verify:`` order."""

    lab: str
    routing: Literal["auto", "none"]
    features: list[str]
    nodes: dict[str, Node]
    bridges: dict[str, Bridge]
    segments: dict[str, Segment]
    veths: list[Veth]
    tunnels: list[Tunnel]
    impairments: list[Impairment]
    checks: list[Check]
