"""Phase 2, resolve and validate: the raw document becomes a typed :class:`Lab` (pydantic).

Field-level rules live here (types, safe names, ranges, unknown keys); rules that need the
whole lab (references, duplicates, addressing) live in :mod:`topo.expand`.

Names that reach the kernel or a command line (lab, node, bridge, group, interface) must
be safe identifiers: ASCII letters, digits, ``-`` and ``_``, starting with a letter. They are
passed to programs as argv only, never through a shell; the pattern keeps them readable and
valid as file, namespace and Ansible host names.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from topo.errors import Problems, Source
from topo.load import RawLab

#: A safe identifier. Node and bridge names become parts of namespace names and Ansible hosts.
#: One pattern for the front end and the modules (they refuse other lab names).
from ansible_collections.topo.lab.plugins.module_utils.api import NAME_PATTERN as NAME_RE  # noqa: E402
Name = Annotated[str, Field(pattern=NAME_RE, min_length=1, max_length=40)]
#: Lab names are part of every namespace name (topo-<lab>-<node>).
LabName = Annotated[str, Field(pattern=NAME_RE, min_length=1, max_length=24)]
#: Interface names: at most 15 characters (IFNAMSIZ is 16 with the terminating NUL).
IfName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", min_length=1, max_length=15)]
Mtu = Annotated[int, Field(ge=68, le=65535)]


def _check_interface(value: str) -> str:
    """'a.b.c.d' or 'a.b.c.d/len' (IPv4), or 'x:x::x' or 'x:x::x/len' (IPv6). Returned
    unchanged; expand decides the length."""
    if ":" in value:
        try:
            ipaddress.IPv6Interface(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv6 address (e.g. 2001:db8::1 or 2001:db8::1/64)") from None
        return value
    try:
        ipaddress.IPv4Interface(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address (a.b.c.d or a.b.c.d/len)") from None
    return value


def _check_address(value: str | None, hint: str = "") -> str | None:
    """'a.b.c.d' (IPv4, no prefix length), or None."""
    if value is not None:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address{hint}") from None
    return value


def _check_any_address(value: str | None, hint: str = "") -> str | None:
    """'a.b.c.d' (IPv4) or 'x:x::x' (IPv6), no prefix length, or None."""
    if value is not None:
        try:
            ipaddress.IPv6Address(value) if ":" in value else ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an {family_of(value)} address{hint}") from None
    return value


def _check_network(value: str) -> str:
    """'a.b.c.d/len' or 'x:x::/len', without host bits."""
    v6 = ":" in value
    example = "e.g. 2001:db8::/64" if v6 else "a.b.c.d/len"
    try:
        net = (ipaddress.IPv6Network if v6 else ipaddress.IPv4Network)(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an {family_of(value)} subnet ({example})") from None
    if "/" not in value:
        raise ValueError(f"{value!r} has no prefix length; write it as {example}")
    if net.network_address != ipaddress.ip_address(value.split("/", 1)[0]):
        raise ValueError(f"{value!r} has host bits set; the subnet is {net}")
    return str(net)  # canonical: 2001:DB8:8:0::/64 and 2001:db8:8::/64 are one subnet


def _optional_network(value: str | None) -> str | None:
    return None if value is None else _check_network(value)


def family_of(value: str) -> str:
    """``"IPv6"`` for a value with a ``:`` (an IPv6 address or prefix), else ``"IPv4"``."""
    return "IPv6" if ":" in value else "IPv4"


def _dual(check, what: str):
    """A validator for a value of one or both families: one value, a YAML list or a
    space-separated string of at most one IPv4 and one IPv6 value, each checked by
    ``check``. The result is one string, the IPv4 value first (see :func:`by_family`)."""
    def validate(value):
        if value is None or isinstance(value, bool):
            return value
        if not isinstance(value, (str, list)):
            raise ValueError(f"give one {what} or one of each family (IPv4 and IPv6), as a list or "
                             "separated by spaces")
        items = value if isinstance(value, list) else value.split()
        if not items or not all(isinstance(i, str) for i in items):
            raise ValueError(f"give one {what} or one of each family (IPv4 and IPv6), as a list or "
                             "separated by spaces")
        seen: dict[str, str] = {}
        for item in items:
            check(item.strip())
            fam = family_of(item)
            if fam in seen:
                raise ValueError(f"two {fam} values ({seen[fam]} and {item.strip()}); give at most one "
                                 f"{what} of each family")
            seen[fam] = item.strip()
        return " ".join(seen[f] for f in ("IPv4", "IPv6") if f in seen)
    return validate


def by_family(value: str | None) -> tuple[str | None, str | None]:
    """``(IPv4 part, IPv6 part)`` of a value validated by :func:`_dual` (None when absent)."""
    v4 = v6 = None
    for item in (value or "").split():
        if ":" in item:
            v6 = item
        else:
            v4 = item
    return v4, v6


#: An interface address of either family or both: ``10.0.0.1/24``, ``[10.0.0.1/24, "2001:db8::1/64"]``
#: or ``"10.0.0.1/24 2001:db8::1/64"``; held as one string, IPv4 first (:func:`by_family`).
DualInterface = Annotated[Union[str, None], BeforeValidator(_dual(_check_interface, "address"))]
#: A subnet of either family or both (same forms as :data:`DualInterface`).
DualNetwork = Annotated[Union[str, None], BeforeValidator(_dual(_check_network, "subnet"))]
#: An address without length of either family or both (a default gateway per family).
DualAddress = Annotated[Union[str, None], BeforeValidator(_dual(_check_any_address, "address"))]


class Strict(BaseModel):
    """Base of every model: unknown keys are errors (misspelt keys never pass silently) and
    strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StaticRoute(Strict):
    """A static route on a node: destination prefix and next-hop address (``via``), both IPv4
    (``0.0.0.0/0`` the default) or both IPv6 (``::/0`` the default; the next hop a global
    address on one of the node's subnets), or an interface of the node it leaves through
    (``dev``: a tunnel end, a veth, a bridge inside the node), or both (the next hop then
    on that interface's subnet)."""

    dst: str
    via: str | None = None
    dev: IfName | None = None

    _dst = field_validator("dst")(_check_network)
    _via = field_validator("via")(lambda v: v if v is None else _check_any_address(v))

    @model_validator(mode="after")
    def _same_family(self):
        if self.via is None:
            if self.dev is None:
                raise ValueError(f"the route to {self.dst} needs via (the next hop), dev (the interface it "
                                 "leaves through) or both")
            return self
        if family_of(self.dst) != family_of(self.via):
            raise ValueError(f"via {self.via} is an {family_of(self.via)} address but dst {self.dst} is an "
                             f"{family_of(self.dst)} prefix; a route's next hop is of its destination's family")
        return self


#: A Docker image reference: ``[registry/]repo[:tag][@digest]``.
Image = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/:@-]*$", min_length=1, max_length=255)]
#: The node image ``topo image build`` makes (topo.image.DEFAULT_IMAGE).
DEFAULT_IMAGE = "topo-node:latest"
#: Settings only a docker node has.
DOCKER_SETTINGS = ("image", "cmd", "env", "binds")


def _check_binds(value: list[str]) -> list[str]:
    for bind in value:
        parts = bind.split(":")
        if len(parts) not in (2, 3) or not all(p.startswith("/") for p in parts[:2]) \
                or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise ValueError(f"bind {bind!r} is not HOST-PATH:CONTAINER-PATH[:ro|rw] with absolute paths")
    return value


class NodeDefaults(Strict):
    """Lab-wide node settings (``defaults:``), used by every node that does not set its own:
    ``defaults: {kind: docker}`` makes every node a container."""

    kind: Literal["netns", "docker"] | None = None
    image: Image | None = None
    cmd: list[str] | None = None
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], Union[str, int, float, bool]] | None = None
    binds: list[str] | None = None

    _binds = field_validator("binds")(lambda v: v if v is None else _check_binds(v))

    @field_validator("cmd", mode="before")
    @classmethod
    def _cmd(cls, v):
        """``cmd: sleep infinity`` is split like a shell would (shlex), never run by one."""
        if isinstance(v, str):
            import shlex
            try:
                return shlex.split(v)
            except ValueError as exc:
                raise ValueError(f"cmd {v!r}: {exc}") from None
        return v


def _valid_default(key: str, value) -> bool:
    try:
        NodeDefaults.model_validate({key: value})
        return True
    except ValidationError:
        return False


class Node(NodeDefaults):
    """A lab node. ``kind: netns`` (default) is a named network namespace; ``kind: docker`` is a
    container (``image``, default topo-node:latest; ``cmd``, ``env``, ``binds``) whose network
    namespace topo wires exactly like a namespace node's."""

    kind: Literal["netns", "docker"] = "netns"
    groups: list[Name] = []
    forwarding: bool = False
    #: ``true`` (one per family of the lab's ``af`` from the loopback pools), or explicit
    #: addresses (one per family; IPv4 /32 and IPv6 /128 unless a length is given).
    loopback: Union[bool, str] = False
    sysctls: dict[str, Union[str, int]] = {}
    routes: list[StaticRoute] = []
    #: The default gateway: one address per family (``0.0.0.0/0`` and ``::/0`` routes).
    gateway: DualAddress = None
    #: Service addresses this node shares with others (anycast): /32s (IPv4) and /128s (IPv6)
    #: on its lo, routed to the nearest holder by ``routing: auto``.
    anycast: list[str] = []
    #: The build host this node is placed on (a host of the build-host inventory's
    #: ``topo_hosts``); None: placed automatically (topo.expand.placement).
    host: Name | None = None
    #: Commands run inside the node once, right after the apply that created it (argv lists;
    #: a string is split like a shell would, never run by one): containerlab's ``exec:``.
    exec: list[list[str]] | None = None

    @field_validator("exec", mode="before")
    @classmethod
    def _exec(cls, v):
        """Each command is an argv list, or a string split with shlex (``sh -c '...'`` for a shell)."""
        if isinstance(v, list):
            import shlex
            out = []
            for cmd in v:
                try:
                    out.append(shlex.split(cmd) if isinstance(cmd, str) else cmd)
                except ValueError as exc:
                    raise ValueError(f"exec {cmd!r}: {exc}") from None
            if any(isinstance(c, list) and not c for c in out):
                raise ValueError("an exec command is empty")
            return out
        return v

    @field_validator("loopback", mode="before")
    @classmethod
    def _loopback(cls, v):
        if isinstance(v, bool) or v is None:
            return v
        return _dual(_check_interface, "loopback address")(v)

    @field_validator("anycast")
    @classmethod
    def _anycast(cls, v):
        for a in v:
            _check_any_address(a)
        return v

    @model_validator(mode="after")
    def _docker_only(self):
        if self.kind != "docker":
            for key in DOCKER_SETTINGS:
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} applies to docker nodes only; set kind: docker on the node "
                                     "(or in defaults:)")
        return self

    @field_validator("sysctls")
    @classmethod
    def _sysctls(cls, v):
        for key in v:
            if not key.startswith("net.") or "/" in key or ".." in key:
                raise ValueError(f"sysctl {key!r}: only network sysctls (net.*) are per namespace")
        return v


class Bridge(Strict):
    """A Linux bridge: a LAN segment. It lives in its own namespace (topo-<lab>-<bridge>),
    or, with ``node:``, inside that node's namespace (where a tunnel end can join it)."""

    node: Name | None = None
    subnet: DualNetwork = None
    mtu: Mtu | None = None
    igmp_snooping: bool = True
    querier: bool = False


class Endpoint(Strict):
    """One end of a link: a node (with optional interface name and address) or a bridge."""

    node: Name
    ifname: IfName | None = None
    address: DualInterface = None
    mac: str | None = Field(default=None, pattern=r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")


class TunnelEndpoint(Strict):
    """One end of a tunnel: the node, its tunnel interface and overlay address, the underlay
    address it leaves from (``local``), and the bridge (inside that node) it joins."""

    node: Name
    ifname: IfName | None = None
    address: DualInterface = None
    local: str | None = None
    #: The underlay address this end sends to: the other end's ``local`` (an explicit
    #: ``remote`` equals it when both are given, and stands for it when it is not). On the
    #: only end of a tunnel whose other end is outside the lab, the outside peer's address
    #: (required there; any address that is not a lab node's).
    remote: str | None = None
    bridge: Name | None = None

    _local = field_validator("local")(lambda v: _check_any_address(v, " (the underlay address, no /len)"))
    _remote = field_validator("remote")(lambda v: _check_any_address(v, " (the other end's underlay address, "
                                                                        "no /len)"))

    @model_validator(mode="after")
    def _remote_family(self):
        if self.local and self.remote and family_of(self.local) != family_of(self.remote):
            raise ValueError(f"remote {self.remote} is an {family_of(self.remote)} address but local "
                             f"{self.local} is an {family_of(self.local)} one; a tunnel's underlay is of one family")
        return self


def _endpoint_shorthand(value):
    """'h1' or 'h1:eth0' stands for {node: h1[, ifname: eth0]}."""
    if isinstance(value, str):
        node, sep, ifname = value.partition(":")
        return {"node": node, "ifname": ifname} if sep else {"node": node}
    return value


class Link(Strict):
    """A veth link between two nodes, or from a node to a bridge."""

    endpoints: list[Endpoint] = Field(min_length=2, max_length=2)
    subnet: DualNetwork = None
    mtu: Mtu = 1500
    impair: Impairment | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        if isinstance(value, list):
            value = {"endpoints": value}
        if isinstance(value, dict) and isinstance(value.get("endpoints"), list):
            value = dict(value, endpoints=[_endpoint_shorthand(e) for e in value["endpoints"]])
        return value


class Impairment(Strict):
    """Egress impairments of a link, applied at both ends (so a ping's RTT gains 2 x delay).
    delay and jitter in milliseconds, loss in percent, rate in bits per second (or with a
    unit: 10kbit, 20mbit, 1gbit; as tc counts them, k = 1000)."""

    delay: Annotated[float, Field(ge=0, le=60_000)] | None = None
    jitter: Annotated[float, Field(ge=0, le=60_000)] | None = None
    loss: Annotated[float, Field(ge=0, le=100)] | None = None
    rate: Annotated[int, Field(ge=8_000, le=34_359_738_360)] | None = None  # pyroute2 sends 32-bit bytes/s

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, v):
        if isinstance(v, str):
            import re
            m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:bit)?(?:/s|ps)?\s*", v.lower())
            if not m:
                raise ValueError(f"{v!r} is not a rate: write bits per second, or e.g. 500kbit, 20mbit, 1gbit")
            return int(float(m.group(1)) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[m.group(2)])
        return v

    @model_validator(mode="after")
    def _jitter(self):
        if self.jitter and not self.delay:
            raise ValueError("jitter needs a delay (netem varies the delay by the jitter)")
        return self


class Tunnel(Strict):
    """A tunnel between two nodes: ``vxlan`` (L2 over UDP), ``gre`` (L3) or ``gretap`` (L2),
    over an IPv4 or an IPv6 underlay (gre and gretap over IPv6 are the kernel's ``ip6gre``
    and ``ip6gretap`` devices, chosen by the expansion).

    A tunnel with one endpoint has its other end outside the lab (a VM or router topo does
    not build): that endpoint's ``remote`` is the outside peer's underlay address, and topo
    builds this end only (:attr:`outside`).

    Each endpoint is a node (``"leaf1"`` or ``{node, ifname, address, local, bridge}``):
    ``local`` is the underlay address the tunnel leaves from (IPv4 or IPv6; default: the
    node's loopback, else the address of its first interface; IPv4 unless an end has none
    and both have an IPv6 one), ``address`` the overlay address (default: from a pool),
    ``bridge`` a bridge inside that node to plug the tunnel into (L2 tunnels).
    """

    type: Literal["vxlan", "gre", "gretap"]
    endpoints: list[TunnelEndpoint] = Field(min_length=1, max_length=2)
    vni: Annotated[int, Field(ge=0, le=16_777_215)] | None = None
    dstport: Annotated[int, Field(ge=1, le=65535)] = 4789
    srcport: list[Annotated[int, Field(ge=1, le=65535)]] | None = Field(None, min_length=2, max_length=2)
    learning: bool = True
    key: Annotated[int, Field(ge=0, le=4_294_967_295)] | None = None
    ttl: Annotated[int, Field(ge=1, le=255)] | None = None
    mtu: Mtu | None = None
    #: ``strict``: a tunnel whose MTU is below the largest frame of the segment it carries is
    #: refused; ``warn``: built anyway, with a warning naming the largest frame that passes
    #: (None: the lab's ``mtu_check``).
    mtu_check: Literal["strict", "warn"] | None = None
    subnet: DualNetwork = None
    impair: Impairment | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        if isinstance(value, dict) and isinstance(value.get("endpoints"), list):
            value = dict(value, endpoints=[_endpoint_shorthand(e) for e in value["endpoints"]])
        return value

    @model_validator(mode="after")
    def _fields(self):
        if self.type == "vxlan":
            if self.vni is None:
                raise ValueError("a vxlan tunnel needs a vni (0-16777215)")
            if self.key is not None:
                raise ValueError("key is for gre and gretap; a vxlan tunnel has a vni")
        else:
            for name in ("vni", "srcport"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is for vxlan tunnels, not {self.type}")
            if "dstport" in self.model_fields_set:
                raise ValueError(f"dstport is for vxlan tunnels, not {self.type}")
            if "learning" in self.model_fields_set:
                raise ValueError(f"learning is for vxlan tunnels, not {self.type}")
        if self.type == "gre" and any(e.bridge for e in self.endpoints):
            raise ValueError("a gre tunnel is L3 and cannot join a bridge; use gretap (or vxlan)")
        if self.srcport and self.srcport[0] > self.srcport[1]:
            raise ValueError(f"srcport {self.srcport}: the first port must not exceed the second")
        locals_ = [e.local for e in self.endpoints if e.local]
        if len({family_of(a) for a in locals_}) > 1:
            raise ValueError(f"local {locals_[0]} and local {locals_[1]}: both ends of a tunnel leave from "
                             "addresses of one family")
        if self.outside and self.endpoints[0].remote and self.endpoints[0].local and \
                ipaddress.ip_address(self.endpoints[0].remote) == ipaddress.ip_address(self.endpoints[0].local):
            raise ValueError(f"endpoints[0].remote {self.endpoints[0].remote} is its own local; the outside "
                             "peer's underlay address differs from this end's")
        for j, end in enumerate([] if self.outside else self.endpoints):
            other = self.endpoints[1 - j]
            if end.remote and other.local and ipaddress.ip_address(end.remote) != ipaddress.ip_address(other.local):
                raise ValueError(f"endpoints[{j}].remote {end.remote} and endpoints[{1 - j}].local {other.local} "
                                 f"disagree: {end.node}'s remote is {other.node}'s local (give one of them, "
                                 "or the same address)")
        remotes = [(j, e.remote) for j, e in enumerate(self.endpoints) if e.remote]
        if len({family_of(a) for _, a in remotes} | {family_of(a) for a in locals_}) > 1:
            raise ValueError("the ends' local and remote addresses are of both families; a tunnel's underlay "
                             "is of one family")
        return self

    @property
    def outside(self) -> bool:
        """Whether the tunnel's other end is outside the lab (one endpoint, sending to its ``remote``)."""
        return len(self.endpoints) == 1

    def declared_locals(self) -> list[str | None]:
        """Each end's declared underlay address: its ``local``, else the other end's ``remote``
        (an outside tunnel's one end: its ``local``)."""
        if self.outside:
            return [self.endpoints[0].local]
        return [e.local or self.endpoints[1 - j].remote for j, e in enumerate(self.endpoints)]


class Pool(Strict):
    """An address pool: subnets of ``prefix`` bits are carved from ``ipv4``, and of
    ``prefix6`` bits from ``ipv6``, in order. A key not given takes the pool's default
    (:data:`DEFAULT_POOLS`)."""

    ipv4: str | None = None
    prefix: Annotated[int, Field(ge=8, le=32)] | None = None
    ipv6: str | None = None
    prefix6: Annotated[int, Field(ge=8, le=128)] | None = None

    @field_validator("ipv4", "ipv6")
    @classmethod
    def _prefix(cls, v, info):
        if v is None:
            return v
        wanted = "IPv4" if info.field_name == "ipv4" else "IPv6"
        if family_of(v) != wanted:
            other = "ipv6" if wanted == "IPv4" else "ipv4"
            raise ValueError(f"{v!r} is an {family_of(v)} prefix; an {wanted} pool is given as {info.field_name}: "
                             f"(this one belongs under {other}:)")
        return _check_network(v)


#: ``node:interface`` of a link end (a capture point, a link taken down during a check).
LinkEnd = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*:[A-Za-z][A-Za-z0-9_.-]{0,14}$")]


class During(Strict):
    """``during: {down: [node:interface, ...]}`` on a ping or cast check: those interfaces
    are set down for the check and up again after it (also when it fails), with their
    node's addresses and routes restored, so a lab proves that a path depends on a link
    (``expect: fail``) or survives its loss."""

    down: list[LinkEnd] = Field(min_length=1)


class PingCheck(Strict):
    """Ping from nodes to nodes; ``expect: fail`` for pairs that must not reach; ``during``:
    links taken down while it runs."""

    from_: list[Name] | Literal["all"] = Field("all", alias="from")
    to: list[Name] | Literal["all"] = "all"
    expect: Literal["pass", "fail"] = "pass"
    during: During | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value):
        if value == "all":
            return {}
        if isinstance(value, dict):
            value = dict(value)
            for key in ("from", "to"):
                if isinstance(value.get(key), str) and value[key] != "all":
                    value[key] = [value[key]]
        return value


class CaptureExpect(Strict):
    """What a capture must show: layer names in order (scapy's: Ether, IP, GRE, UDP, VXLAN,
    ICMP ...), and optionally the VXLAN VNI or GRE key, in at least ``min_packets`` packets."""

    layers: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9]+$")]] = Field(min_length=1)
    vni: Annotated[int, Field(ge=0, le=16_777_215)] | None = None
    gre_key: Annotated[int, Field(ge=0, le=4_294_967_295)] | None = None
    min_packets: Annotated[int, Field(ge=1, le=1000)] = 1


class CapturePing(Strict):
    """The traffic of a capture check: pings from one node to another's first address."""

    from_: Name = Field(alias="from")
    to: Name
    count: Annotated[int, Field(ge=1, le=100)] = 3

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CaptureCheck(Strict):
    """Capture on ``on`` (``node:interface``) while ``ping`` runs; pass when ``expect`` is seen."""

    on: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*:[A-Za-z][A-Za-z0-9_.-]{0,14}$")]
    ping: CapturePing
    expect: CaptureExpect
    filter: Annotated[str, Field(max_length=200, pattern=r"^[A-Za-z0-9 .:/()&|!<>=\[\]-]*$")] | None = None


# ----------------------------------------------------------------- cast and iperf3 checks

Port = Annotated[int, Field(ge=1, le=65535)]
#: A node name, or a declared group name standing for its members.
Member = Name
#: ``node:interface`` to capture on during a check.
CaptureOn = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*:[A-Za-z][A-Za-z0-9_.-]{0,14}$")]
#: A tcpdump filter: no shell ever sees it (argv), but keep it to BPF's characters.
Bpf = Annotated[str, Field(max_length=200, pattern=r"^[A-Za-z0-9 .:/()&|!<>=\[\]-]*$")]


class CaptureDuring(Strict):
    """``capture: {on: node:interface, filter: BPF}`` on a cast or iperf3 check."""

    on: CaptureOn
    filter: Bpf | None = None


class Payload(Strict):
    """One message: ``text`` (UTF-8), ``json`` (any JSON value, sent compact with sorted
    keys) or ``bytes`` (that many random bytes, drawn when the check runs)."""

    text: Annotated[str, Field(max_length=8000)] | None = None
    json_: Union[dict, list, str, int, float, bool, None] = Field(None, alias="json")
    bytes: Annotated[int, Field(ge=1, le=8000)] | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("text", "json_", "bytes") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError("a message is one of: text, json, bytes")
        return self

    def expanded(self) -> dict:
        """The message as the cast checks take it: ``{text|json|bytes: value}``."""
        field = next(k for k in ("text", "json_", "bytes") if k in self.model_fields_set)
        return {field.rstrip("_"): getattr(self, field)}


#: Why a broadcast check cannot be IPv6 (the cast module says the same).
NO_BROADCAST6 = "broadcast is IPv4-only; use multicast to ff02::1"


def _check_group(value: str) -> str:
    """A multicast group: 224.0.0.0/4 or ff00::/8 (the message names the value's family's)."""
    _check_any_address(value)
    addr = ipaddress.ip_address(value)
    if not addr.is_multicast:
        raise ValueError(f"{value} is not a multicast group address "
                         f"({'ff00::/8' if addr.version == 6 else '224.0.0.0/4'})")
    return value


class _Cast(Strict):
    """Fields every cast check has: a name (default ``<type>-<n>``), how long receivers
    listen (``timeout``, seconds), the messages, an optional capture during the check, links
    taken down while it runs (``during``, see :class:`During`), and
    the address ``family`` (``ipv4`` / ``ipv6``; unset: ``ipv6`` when the check names an
    IPv6 address or group, else ``ipv4``)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=60)] | None = None
    family: Literal["ipv4", "ipv6"] | None = None
    timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    message: Annotated[str, Field(max_length=8000)] | None = None
    messages: list[Payload] | None = None
    capture: Union[CaptureOn, CaptureDuring] | None = None
    during: During | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def payloads(self) -> list[dict]:
        """What the check sends, in order, as the cast module takes it: the ``messages``
        expanded, else one ``{"text": message}`` (default ``topo <Check> check``)."""
        if self.messages:
            return [m.expanded() for m in self.messages]
        return [{"text": self.message if self.message is not None else f"topo {type(self).__name__} check"}]


class UnicastCheck(_Cast):
    """A UDP or TCP message from one node to another, which must arrive intact (or, with
    ``expect: fail``, not at all)."""

    from_: Name = Field(alias="from")
    to: Name
    address: str | None = None
    port: Port = 5000
    proto: Literal["udp", "tcp"] = "udp"
    expect: Literal["pass", "fail"] = "pass"

    _address = field_validator("address")(_check_any_address)


class BroadcastCheck(_Cast):
    """A UDP broadcast: ``address: limited`` (255.255.255.255, the default) or ``directed``
    (the sender's subnet broadcast address). Every node of ``to`` must receive it, every node
    of ``silent`` (e.g. beyond a router) must not."""

    from_: Name = Field(alias="from")
    to: list[Member] = Field(min_length=1)
    silent: list[Member] = []
    address: Literal["limited", "directed"] = "limited"
    port: Port = 5000

    @model_validator(mode="after")
    def _ipv4_only(self):
        if self.family == "ipv6":
            raise ValueError(NO_BROADCAST6)
        return self


class MulticastMember(Strict):
    """A group member named with the interface it joins on (default: the kernel's choice)."""

    node: Name
    interface: IfName | None = None


class SilentListener(Strict):
    """A non-member that listens on the check's port, optionally joined to *other* groups
    (``join``): it must get nothing of the checked group."""

    node: Name
    join: list[str] = []

    @field_validator("join")
    @classmethod
    def _groups(cls, v):
        for g in v:
            _check_group(g)
        return v


class MulticastCheck(_Cast):
    """UDP to a group: ``members`` join it (IP_ADD_MEMBERSHIP, on ``interface`` when given),
    ``silent`` nodes listen on the port without joining and must get nothing, ``leave``
    members drop the group after a first round and must get nothing of a second; ``ack``:
    members answer every datagram and the senders count the answers. ``ttl`` is the
    datagrams' IP TTL (1: they do not cross a router), over IPv6 their hop limit. A group
    in ff00::/8 makes an IPv6 check (MLD join and leave). ``wire: clean``: no datagram of
    the group may reach a silent node's wire either (its interfaces are captured); every
    bridge a silent node is on must then snoop IGMP/MLD and have a querier."""

    from_: Union[Name, list[Name]] = Field(alias="from")
    from_interface: IfName | None = None
    group: str
    port: Port = 5007
    ttl: Annotated[int, Field(ge=1, le=255)] = 1
    members: list[Union[Member, MulticastMember]] = Field(min_length=1)
    silent: list[Union[Member, SilentListener]] = []
    leave: list[Name] = []
    ack: bool = False
    wire: Literal["clean"] | None = None

    _group = field_validator("group")(_check_group)


class AnycastCheck(_Cast):
    """One service ``address`` held by several ``servers`` (their ``anycast:`` addresses);
    each client must be answered by the server named for it in ``clients`` (the nearest by
    routing), over each protocol of ``proto``."""

    address: str
    port: Port = 8080
    proto: list[Literal["tcp", "udp"]] = ["tcp"]
    servers: list[Name] = Field(min_length=1)
    clients: dict[Name, Name] = Field(min_length=1)

    _address = field_validator("address")(_check_any_address)


class RelayCheck(_Cast):
    """``from`` unicasts to ``via`` on ``port``; ``via`` rebroadcasts what it got on
    ``out_port`` (limited broadcast; over IPv6 to ff02::1, all nodes of the link); every
    node of ``to`` must receive it."""

    from_: Name = Field(alias="from")
    via: Name
    port: Port = 6000
    out_port: Port = 6001
    to: list[Member] = Field(min_length=1)
    silent: list[Member] = []


def _bits(value):
    """Bits per second from a number or ``500kbit`` / ``20mbit`` / ``1gbit`` (see Impairment)."""
    if isinstance(value, str):
        m = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmg]?)(?:bit|bps)?\s*$", value.lower())
        if not m:
            raise ValueError(f"{value!r} is not a rate: bits per second, or e.g. 500kbit, 20mbit, 1gbit")
        return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]
    return value


#: The most times an iperf3 sweep may run (``repeats``): 20 rounds of a 6-length sweep of
#: 2 s runs are already 4 minutes.
MAX_REPEATS = 20


class Iperf3Check(Strict):
    """iperf3 from ``client`` to ``server`` (its first address): TCP or UDP, ``duration``
    seconds, ``parallel`` streams, once per buffer length of ``lengths`` (iperf3 -l, bytes),
    the whole sweep ``repeats`` times (1 to 20; each length's figure is the median of its
    runs), each median at least ``min`` bits per second when given; UDP at ``bitrate``. ``family:
    ipv6`` runs it over IPv6 (iperf3 -6, to the server's first IPv6 address)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=60)] | None = None
    family: Literal["ipv4", "ipv6"] | None = None
    client: Name
    server: Name
    proto: Literal["tcp", "udp"] = "tcp"
    duration: Annotated[int, Field(ge=1, le=600)] = 3
    parallel: Annotated[int, Field(ge=1, le=128)] = 1
    lengths: list[Annotated[int, Field(ge=16, le=1_048_576)]] = []
    repeats: int = 3
    min: Annotated[float, Field(gt=0)] | None = None
    bitrate: Annotated[float, Field(gt=0)] | None = None
    port: Port = 5201
    capture: Union[CaptureOn, CaptureDuring] | None = None

    _rates = field_validator("min", "bitrate", mode="before")(_bits)

    @field_validator("repeats")
    @classmethod
    def _repeats(cls, value: int) -> int:
        if not 1 <= value <= MAX_REPEATS:
            raise ValueError(f"must be 1 to {MAX_REPEATS} (how many times the sweep runs; each length's "
                             f"figure is the median of its runs), got {value}")
        return value


CHECK_TYPES = ("ping", "capture", "unicast", "broadcast", "multicast", "anycast", "relay", "iperf3")


class Check(Strict):
    """One entry of ``verify:``: exactly one of ping, capture, unicast, broadcast,
    multicast, anycast, relay, iperf3."""

    ping: PingCheck | None = None
    capture: CaptureCheck | None = None
    unicast: UnicastCheck | None = None
    broadcast: BroadcastCheck | None = None
    multicast: MulticastCheck | None = None
    anycast: AnycastCheck | None = None
    relay: RelayCheck | None = None
    iperf3: Iperf3Check | None = None

    @model_validator(mode="after")
    def _one(self):
        if sum(getattr(self, t) is not None for t in CHECK_TYPES) != 1:
            raise ValueError("a check is one of: " + ", ".join(CHECK_TYPES))
        return self

    @property
    def kind(self) -> str:
        """The check's type: the one key of :data:`CHECK_TYPES` that is set."""
        return next(t for t in CHECK_TYPES if getattr(self, t) is not None)


DEFAULT_POOLS = {
    # netlab's defaults: LANs /24 from 172.16.0.0/16, point-to-point /30 from 10.1.0.0/16,
    # loopbacks /32 from 10.0.0.0/24. IPv6, in the documentation prefix 2001:db8::/32
    # (RFC 3849): LANs and point-to-point links /64 from 2001:db8:1::/48 and 2001:db8:2::/48,
    # loopbacks /128 from 2001:db8::/64.
    "lan": {"ipv4": "172.16.0.0/16", "prefix": 24, "ipv6": "2001:db8:1::/48", "prefix6": 64},
    "p2p": {"ipv4": "10.1.0.0/16", "prefix": 30, "ipv6": "2001:db8:2::/48", "prefix6": 64},
    "loopback": {"ipv4": "10.0.0.0/24", "prefix": 32, "ipv6": "2001:db8::/64", "prefix6": 128},
}
#: Address families a lab's pools hand out (``af:``).
FAMILIES = ("ipv4", "ipv6")


class MultiHost(Strict):
    """How a lab spread over several build hosts is stitched (topo.expand.stitch):
    ``vni_base``: the first VNI of the VXLANs that join nodes and bridge segments across
    hosts (each takes the next free one, and keeps it on re-apply); ``port``: their UDP
    destination port (IANA's VXLAN port 4789 by default)."""

    vni_base: Annotated[int, Field(ge=1, le=16_777_215)] = 10_000
    port: Annotated[int, Field(ge=1, le=65_535)] = 4789


class Lab(Strict):
    """A whole topology, as written (before expansion).

    ``source`` (set by :func:`resolve`) is where it came from: the file and the line of
    each path, so the expansion names the line of anything it rejects.
    """

    _source: Source | None = PrivateAttr(default=None)

    name: LabName
    routing: Literal["auto", "none"] = "none"
    #: Address families the pools hand out addresses of: ``[ipv4]`` (default), ``[ipv4, ipv6]``
    #: (dual stack) or ``[ipv6]``. Explicit addresses of either family are always kept.
    af: list[Literal["ipv4", "ipv6"]] = Field(["ipv4"], min_length=1)
    #: The default of every tunnel's ``mtu_check`` (``strict`` or ``warn``).
    mtu_check: Literal["strict", "warn"] = "strict"
    #: False: no pool addresses; interfaces without a declared address are left to the
    #: nodes' exec: commands (containerlab labs).
    autoaddress: bool = True
    defaults: NodeDefaults = NodeDefaults()
    addressing: dict[Literal["lan", "p2p", "loopback"], Pool] = {}
    nodes: dict[Name, Node]
    bridges: dict[Annotated[str, Field(pattern=NAME_RE, max_length=15)], Bridge] = {}
    links: list[Link] = []
    tunnels: list[Tunnel] = []
    verify: list[Check] | None = None
    multihost: MultiHost = MultiHost()

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, value):
        """Allow ``h1:`` (null) for a node with defaults, and a list of node names."""
        if not isinstance(value, dict):
            return value
        value = dict(value)
        for key in ("nodes", "bridges"):
            items = value.get(key)
            if isinstance(items, list) and all(isinstance(i, str) for i in items):
                items = {i: None for i in items}
            if isinstance(items, dict):
                value[key] = {k: ({} if v is None else v) for k, v in items.items()}
        defaults = value.get("defaults")
        if isinstance(defaults, dict) and isinstance(value.get("nodes"), dict):
            given = {k: v for k, v in defaults.items() if k in NodeDefaults.model_fields and v is not None
                     and _valid_default(k, v)}  # an invalid default is reported once, under defaults

            def merged(node):
                if not isinstance(node, dict):
                    return node
                docker = node.get("kind", given.get("kind")) == "docker"
                return {**{k: v for k, v in given.items() if docker or k not in DOCKER_SETTINGS}, **node}
            value["nodes"] = {k: merged(v) for k, v in value["nodes"].items()}
        return value

    @field_validator("af", mode="before")
    @classmethod
    def _af(cls, v):
        """``af: ipv4 ipv6`` (or ``ipv4,ipv6``) stands for the list; each family once."""
        if isinstance(v, str):
            v = v.replace(",", " ").split()
        if isinstance(v, list) and len(set(map(str, v))) != len(v):
            raise ValueError(f"{' '.join(map(str, v))}: name each address family once")
        return v

    def pool(self, name: str) -> Pool:
        """The ``lan``, ``p2p`` or ``loopback`` pool: its declared keys over netlab's defaults."""
        declared = self.addressing.get(name)
        given = declared.model_dump(exclude_none=True) if declared else {}
        return Pool(**{**DEFAULT_POOLS[name], **given})

    @property
    def has_ipv6(self) -> bool:
        """Whether the lab has IPv6: ``af`` holds ipv6, or an IPv6 address, subnet, loopback,
        anycast address, gateway, route or tunnel underlay is declared. Only such a lab's
        expansion has the IPv6 keys (address6, subnet6, loopback6, the IPv6 sysctls)."""
        if "ipv6" in self.af:
            return True
        values = [b.subnet for b in self.bridges.values()]
        for link in self.links:
            values += [link.subnet] + [e.address for e in link.endpoints]
        for tunnel in self.tunnels:
            values += [tunnel.subnet] + [v for e in tunnel.endpoints for v in (e.address, e.local, e.remote)]
        for node in self.nodes.values():
            values += [node.gateway, *node.anycast, *(r.dst for r in node.routes)]
            if isinstance(node.loopback, str):
                values.append(node.loopback)
        return any(isinstance(v, str) and ":" in v for v in values)

    @property
    def source(self) -> Source:
        """The file and line map this lab was validated from (no lines when built in code)."""
        return self._source or Source("<lab>")


def resolve(raw: RawLab) -> Lab:
    """Validate the raw document into a :class:`Lab` that carries ``raw``'s source positions
    (``lab.source``). Raises InputError (exit 2, phase ``validate``) with every field error
    at once, each as ``file:line: field: message``."""
    problems = Problems(raw.file)
    data = dict(raw.data)
    data.setdefault("name", raw.default_name)
    if "name" not in raw.data and not _is_name(raw.default_name, 24):
        problems.add(None, "name", f"the file name gives the lab name {raw.default_name!r}, which is not "
                                   "a safe name (letters, digits, - and _, starting with a letter, "
                                   "at most 24 characters); set name: in the file")
        problems.gate("validate")
    _refuse_listed_twice(data, raw.source, problems)
    try:
        lab = Lab.model_validate(data)
    except ValidationError as exc:
        source = raw.source
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            problems.add(source.where(loc), source.name(loc), _message(err))
    else:
        lab._source = raw.source
        return lab
    problems.gate("validate")
    raise AssertionError("unreachable")


def _refuse_listed_twice(data: dict, source: Source, problems: Problems) -> None:
    """``nodes: [h1, h2, h1]``: the list form names each node (bridge) once, as the mapping
    form's keys must be unique; a name given twice is reported at its second place."""
    for key in ("nodes", "bridges"):
        items = data.get(key)
        if not isinstance(items, list):
            continue
        first: dict[str, int] = {}
        for i, name in enumerate(items):
            if isinstance(name, str) and name in first:
                problems.add(source.where((key, i)), f"{key}[{i}]",
                             f"{name!r} is listed twice (first as {key}[{first[name]}])")
            first.setdefault(name, i)
    problems.gate("validate")


def _is_name(value: str, max_len: int) -> bool:
    return bool(re.match(NAME_RE, value or "")) and len(value) <= max_len


def _message(err: dict) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "string_pattern_mismatch":
        value = err.get("input")
        where = [p for p in err.get("loc", ()) if isinstance(p, str)]
        if where[-1:] == ["image"]:
            return f"{value!r} is not a Docker image reference (lower case, e.g. topo-node:latest)"
        if "[key]" in where[-1:] and "env" in where[-3:-2]:
            return f"{value!r} is not an environment variable name (letters, digits and _, not first a digit)"
        return (f"{value!r} is not a safe name: use letters, digits, '-' and '_', "
                "starting with a letter")
    if kind == "string_too_long":
        return f"{err.get('input')!r} is longer than {err['ctx']['max_length']} characters"
    if kind == "extra_forbidden":
        return "unknown key (misspelt?)"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"{err.get('input')!r} is not one of: {err['ctx']['expected']}"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return msg
