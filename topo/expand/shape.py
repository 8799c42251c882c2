"""The expanded lab's shape: every key it has, with units (DESIGN.md 3).

The expanded lab is plain data (dicts, lists, str, int, float, bool, None), what
``expanded.yml`` and the unit snapshots hold and what :func:`topo.inventory.project` reads.
These TypedDicts document it; they are annotations only, the data stays plain dicts. Keys
appear in the order written here (the YAML keeps insertion order). Addresses are
``"a.b.c.d/len"`` (IPv4) or ``"x:x::x/len"`` (IPv6, compressed, lower case) for an
interface or subnet, without length for a next hop, a tunnel's underlay or a check's
target. MTUs are bytes (None: the kernel's default, 1500).

IPv6 (issue 13): the keys marked *IPv6 lab only* (``address6``, ``loopback6``,
``subnet6``) exist only when the lab has IPv6 (``af`` holds ipv6, or an IPv6 address,
subnet, loopback, gateway, route or tunnel underlay is declared:
:attr:`topo.model.Lab.has_ipv6`), and then on every interface, node, bridge and segment
(None where unset), so an IPv4-only lab expands exactly as before IPv6 existed.
"""

from typing import Literal, NotRequired, TypedDict, Union


class Interface(TypedDict):
    """One interface of a node. kind: ``veth``, ``vxlan``, ``gre``, ``gretap``, ``ip6gre``
    or ``ip6gretap`` (gre / gretap over an IPv6 underlay); address: ``a.b.c.d/len`` or None
    (a tunnel end plugged into a bridge, or no IPv4 subnet on the segment); address6
    (IPv6 lab only): ``x:x::x/len`` or None; segment: the segment's name; peer:
    ``node:ifname`` (the other end) or ``bridge:port`` (the bridge-side veth); None for a
    tunnel end whose peer is outside the lab (its ``tunnels:`` entry's remote says where)."""

    ifname: str
    kind: str
    address: str | None
    address6: NotRequired[str | None]
    mtu: int | None
    segment: str
    peer: str | None


class Route(TypedDict):
    """A static route: dst ``a.b.c.d/len`` (``0.0.0.0/0`` the default) via gateway ``a.b.c.d``,
    or dst ``x:x::/len`` (``::/0`` the default) via gateway ``x:x::x``, a global IPv6 address
    (``routing: auto`` takes the neighbour's on the shared segment, never a link-local one);
    dev: the interface it leaves through (declared ``dev:`` routes only; gateway None when
    the route has none)."""

    dst: str
    gateway: str | None
    dev: NotRequired[str]


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
    ``{name: "value"}`` (sorted) with ``net.ipv4.ip_forward`` always set, and in an IPv6 lab
    ``net.ipv6.conf.all.forwarding`` (as ip_forward) and ``net.ipv6.conf.{all,default}.accept_dad``
    and ``.accept_ra`` "0" (addresses usable at once, no router advertisements; a node's own
    ``sysctls:`` win); loopback: ``a.b.c.d/32`` or None; loopback6 (IPv6 lab only):
    ``x:x::x/128`` or None; routes in order (IPv4 first, then IPv6; in each by network, the
    default last); anycast: the ``a.b.c.d/32`` and ``x:x::x/128`` addresses it shares with
    other nodes on ``lo`` (only when it has some); container: docker nodes only; exec: the
    commands (argv lists) run inside it right after the apply that created it (only when it
    has some); host: the build host it is placed on (several build hosts only,
    :mod:`topo.expand.placement`)."""

    kind: str
    netns: str
    groups: list[str]
    forwarding: bool
    sysctls: dict[str, str]
    loopback: str | None
    loopback6: NotRequired[str | None]
    interfaces: list[Interface]
    routes: list[Route]
    anycast: NotRequired[list[str]]
    exec: NotRequired[list[list[str]]]
    container: NotRequired[Container]
    host: NotRequired[str]


class Bridge(TypedDict):
    """A Linux bridge. netns: where it lives (its node's, or its own ``topo-<lab>-<bridge>``);
    node: the node it lives in or None; ifname: the device, named after the bridge; subnet:
    its segment's ``a.b.c.d/len``; subnet6 (IPv6 lab only): its segment's ``x:x::/len`` or
    None; mtu: bytes or None; mcast_snooping / mcast_querier:
    IGMP snooping and querier on the bridge; ports: bridge-side veth ends and tunnel ends
    plugged in, in link order; hosts: the build hosts that hold a copy (several build hosts
    only: a bridge in a node is on the node's host, one in its own namespace on every host
    with members, the copies joined by a :class:`Stitch`)."""

    netns: str
    node: str | None
    ifname: str
    subnet: str | None
    subnet6: NotRequired[str | None]
    segment: str
    mtu: int | None
    mcast_snooping: bool
    mcast_querier: bool
    ports: list[str]
    hosts: NotRequired[list[str]]


class Segment(TypedDict):
    """An L2 segment. kind: ``lan`` (bridges) or ``p2p``; subnet ``a.b.c.d/len`` or None;
    subnet6 (IPv6 lab only) ``x:x::/len`` or None; members: ``node:ifname`` of the
    addressed interfaces on it; bridges and tunnels (indexes into ``tunnels:`` of the topology)
    only when tunnels carry it or join several bridges."""

    kind: Literal["lan", "p2p"]
    subnet: str | None
    subnet6: NotRequired[str | None]
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
    """A veth pair; ``a`` is a node's end, ``b`` the other node's or the bridge's; host:
    the build host it is made on (several build hosts only)."""

    a: VethEnd
    b: VethEnd
    host: NotRequired[str]


class Tunnel(TypedDict):
    """One tunnel device (one per end in the lab: two per tunnel, one for a tunnel to a peer
    outside the lab, whose remote is that peer's address). kind: ``vxlan``, ``gre`` or
    ``gretap`` (IPv4 underlay), ``ip6gre`` or ``ip6gretap`` (a gre / gretap tunnel over an
    IPv6 underlay; VXLAN keeps its kind); local / remote: underlay ``a.b.c.d`` or
    ``x:x::x``, both of one family; mtu: bytes (underlay path MTU minus the encapsulation,
    :data:`topo.expand.mtu.OVERHEAD` / ``OVERHEAD6``: VXLAN 50 over IPv4, 70 over IPv6;
    gre 24, gretap 38, ip6gre 52, ip6gretap 66; a GRE key 4 more; unless declared); master: bridge it is plugged into or None; ttl: outer
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
    host: NotRequired[str]


class Impairment(TypedDict):
    """Egress impairment of one interface (tc netem / tbf). delay and jitter in
    milliseconds, loss in percent, rate in bits per second; None: not impaired that way."""

    netns: str
    ifname: str
    delay: float | None
    jitter: float | None
    loss: float | None
    rate: int | None
    host: NotRequired[str]


class Stitch(TypedDict):
    """A VXLAN device that joins build hosts (:mod:`topo.expand.stitch`), made on ``host``
    in its own namespace (``underlay_netns`` ``"/"``: the UDP socket stays there) and moved
    into ``netns`` as ``ifname``: a cross-host link's end (the link's interface name, or the
    bridge-side port name) or a cross-host bridge's ``vxlan<VNI>``. local / remote: the
    build hosts' underlay ``a.b.c.d`` (remote None for a bridge's); mtu: bytes (the smallest
    underlay MTU minus 50, unless the link declares one); master: the bridge it is plugged
    into or None; vni (``multihost.vni_base`` upwards, sticky); dstport: UDP
    (``multihost.port``); fdb: the other hosts' underlay addresses, one all-zero FDB entry
    each (head-end replication), [] for a link; stitch: what it joins, ``link a:if--b:if``
    or ``bridge NAME`` (the key its VNI is kept under); mac: the end's declared MAC.
    ttl, srcport, learning as :class:`Tunnel`."""

    kind: Literal["vxlan"]
    host: str
    netns: str
    ifname: str
    underlay_netns: str
    local: str
    remote: str | None
    mtu: int
    master: str | None
    ttl: None
    vni: int
    dstport: int
    srcport: None
    learning: bool
    fdb: list[str]
    stitch: str
    mac: NotRequired[str]


class BuildHost(TypedDict):
    """A build host the lab is placed on: its underlay ``a.b.c.d`` (``topo_underlay``, else
    ``ansible_host``), underlay_mtu (bytes, ``topo_underlay_mtu``, default 1500) and the
    number of nodes placed on it."""

    underlay: str
    underlay_mtu: int
    nodes: int


class PingTarget(TypedDict):
    """An address ``a.b.c.d`` or ``x:x::x`` of ``node`` that must answer (``pass``) or not
    (``fail``). ``ping: all`` targets every reachable address of both families."""

    node: str
    address: str
    expect: Literal["pass", "fail"]


class LinkRef(TypedDict):
    """An interface as topo.lab.link takes it (with a ``state``): its namespace and name."""

    netns: str
    ifname: str


class DownLink(TypedDict):
    """One interface a check takes down: ``on`` as written (``node:iface``), the node, the
    interface (``link``); host: the node's build host (several build hosts only)."""

    on: str
    node: str
    link: LinkRef
    host: NotRequired[str]


class During(TypedDict):
    """A check's ``during:``: the interfaces set down while it runs (and up after it, with
    their nodes' addresses and routes restored). Such a check runs on its own, after the
    others (role verify_during)."""

    down: list[DownLink]


#: Pings from node ``from`` to ``targets`` (one check per source node). Functional form:
#: ``from`` is a Python keyword.
PingCheck = TypedDict("PingCheck", {"type": Literal["ping"], "from": str, "targets": list[PingTarget],
                                    "during": NotRequired[During]})


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
    (groups) and, on a ``wire: clean`` check, ``wire`` (the interfaces whose wire is
    captured: all of the node's), anycast clients ``expect`` (the server that must answer)."""

    node: str
    netns: str
    container: str | None
    address: str | None
    interface: NotRequired[str | None]
    join: NotRequired[list[str]]
    wire: NotRequired[list[str]]
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
    senders, members, silent, leave (node names), ack, wire (``clean``, only when asked:
    no datagram of the group may reach a silent node's wire); anycast: address, port, protos,
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
    wire: NotRequired[Literal["clean"]]
    protos: list[str]
    expect: str
    during: During


class IperfCheck(TypedDict):
    """An iperf3 run (topo.lab.iperf) from ``client`` to ``server`` at ``address``:
    proto ``tcp``/``udp``, duration (seconds), parallel streams, lengths (bytes per write,
    one run each; [] the default), repeats (how many times the sweep runs, 1-20; each
    length's figure is the median of its runs), bitrate (bits per second or None: unlimited for TCP),
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
    repeats: int
    bitrate: int | None
    min_bps: float | None
    port: int
    capture: NotRequired[CastCapture]


Check = Union[PingCheck, CaptureCheck, CastCheck, IperfCheck]


class Expanded(TypedDict):
    """The expanded lab. lab: its name; routing: ``auto`` or ``none``; features: kernel
    features it needs (tunnel types, ``netem``, ``tbf``), sorted; nodes and bridges by
    name in declaration order; segments by name; veths, tunnels and impairments in link
    order; checks: pings first (by source node), then the others in ``verify:`` order;
    warnings (only when there are some): what is built anyway but will not behave as a user
    may expect (``mtu_check: warn``), each ``file:line: field: message``; autoaddress: only
    when False (no pool addresses; topo leaves the addresses of interfaces with ``address:
    None`` alone, for the nodes' ``exec:`` commands). Several build hosts add stitches
    (links, then bridges) and hosts (inventory order)."""

    lab: str
    routing: Literal["auto", "none"]
    autoaddress: NotRequired[bool]
    features: list[str]
    nodes: dict[str, Node]
    bridges: dict[str, Bridge]
    segments: dict[str, Segment]
    veths: list[Veth]
    tunnels: list[Tunnel]
    impairments: list[Impairment]
    checks: list[Check]
    warnings: NotRequired[list[str]]
    stitches: NotRequired[list[Stitch]]
    hosts: NotRequired[dict[str, BuildHost]]
