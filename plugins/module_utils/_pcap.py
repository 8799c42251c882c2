# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: reading pcaps for topo.lab.capture, topo.lab.cast, topo.lab.iperf and the
front end (the underscore: not public API; the front end uses ``api.summarize_pcap``).

:func:`summarize` turns a capture into one flat dict per packet, tunnels opened up (GRE,
gretap, VXLAN); :func:`matches` selects rows by layer stack and tunnel fields. Both are
pure functions of their arguments (and the file). scapy is imported on first use, with
its import-time warnings silenced. Running tcpdump is module_utils/_process.py's
(:class:`_process.Tcpdump`), the one home for programs in nodes.
"""

from __future__ import annotations

import ipaddress
import logging
import warnings

#: Layers that carry no protocol of their own: left out of ``layers``.
_FILLER = ("Raw", "Padding")
#: Layer-name prefixes folded into one protocol name, first match wins: MLD (RFC 2710,
#: 3810: scapy's ICMPv6MLQuery/MLReport/MLDone, ICMPv6MLQuery2/MLReport2) before the
#: rest of ICMPv6; IGMPv3_MR -> IGMP.
_FAMILIES = (("ICMPv6ML", "MLD"), ("ICMPv6", "ICMPv6"), ("IGMP", "IGMP"))
#: Endings of scapy's ICMP error quotes (IPerror, UDPerror, IPerror6, ...).
_QUOTE = ("error", "error6")
#: The limited broadcast (a subnet broadcast is told by its Ethernet destination).
_BCAST4 = "255.255.255.255"
#: CookedLinux (LINUX_SLL) pkttype values.
_SLL_KIND = {1: "broadcast", 2: "multicast"}

_scapy = None


def _load():
    """Import the scapy parts the summary needs, once; RuntimeError when scapy is missing."""
    global _scapy
    if _scapy is not None:
        return _scapy
    logging.getLogger("scapy").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from scapy.utils import PcapReader
            from scapy.layers.inet import IP, UDP
            from scapy.layers.inet6 import IPv6
            from scapy.layers.l2 import GRE, Ether
            from scapy.layers.vxlan import VXLAN
            try:
                import scapy.layers.igmp  # noqa: F401  scapy >= 2.6
            except ImportError:
                import scapy.contrib.igmp  # noqa: F401
                import scapy.contrib.igmpv3  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("scapy is required to read captures on the build host "
                           "(pip install 'scapy>=2.5'): %s" % exc)
    if not any(cls is VXLAN and fields == {"dport": 4789} for fields, cls in UDP.payload_guess):
        from scapy.packet import bind_layers
        bind_layers(UDP, VXLAN, dport=4789)
    if not any(cls is Ether and fields == {"proto": 0x6558} for fields, cls in GRE.payload_guess):
        from scapy.packet import bind_layers
        bind_layers(GRE, Ether, proto=0x6558)
    _scapy = dict(PcapReader=PcapReader, IP=IP, IPv6=IPv6, GRE=GRE, VXLAN=VXLAN)
    return _scapy


def _kind(eth_dst, ip_dst, sll_type):
    """unicast / broadcast / multicast from the outer destination (MAC, IP or SLL type)."""
    if eth_dst == "ff:ff:ff:ff:ff:ff" or ip_dst == _BCAST4:
        return "broadcast"
    if eth_dst is not None and int(eth_dst[:2], 16) & 1:
        return "multicast"  # the group bit: 01:00:5e (IPv4), 33:33 (IPv6), ...
    if ip_dst is not None and ipaddress.ip_address(ip_dst).is_multicast:
        return "multicast"  # 224.0.0.0/4, ff00::/8
    return _SLL_KIND.get(sll_type, "unicast")


def _row(pkt, t0, s):
    """The summary row of one scapy packet (see :func:`summarize`)."""
    names, ips, vni, gre_key = [], [], None, None
    layer = pkt
    while layer:  # outer to inner; an empty payload (NoPayload) is false
        name = type(layer).__name__
        if name not in _FILLER:
            names.append(name)
        if isinstance(layer, (s["IP"], s["IPv6"])) and not name.endswith(_QUOTE):
            ips.append(layer)
        elif isinstance(layer, s["VXLAN"]) and vni is None:
            vni = layer.vni
        elif isinstance(layer, s["GRE"]) and gre_key is None and layer.key_present:
            gre_key = layer.key
        layer = layer.payload
    proto = next((n for n in reversed(names) if not n.endswith(_QUOTE)), "?")
    proto = next((f for prefix, f in _FAMILIES if proto.startswith(prefix)), proto)
    eth = pkt if names and names[0] == "Ether" else None
    sll = pkt if names and names[0].startswith("CookedLinux") else None
    outer, inner = (ips[0], ips[-1]) if ips else (None, None)
    if outer is not None:
        src, dst = outer.src, outer.dst
    elif eth is not None:
        src, dst = eth.src, eth.dst
    else:
        src, dst = None, None
    return {
        "time": round(float(pkt.time - t0), 6),
        "src": src,
        "dst": dst,
        "protocol": proto,
        "length": int(getattr(pkt, "wirelen", None) or len(pkt)),
        "kind": _kind(eth.dst if eth is not None else None,
                      outer.dst if outer is not None else None,
                      getattr(sll, "pkttype", None)),
        "vni": vni,
        "gre_key": gre_key,
        "layers": names,
        "inner_src": inner.src if len(ips) > 1 else None,
        "inner_dst": inner.dst if len(ips) > 1 else None,
    }


def summarize(path, limit=None):
    """Summarise the pcap at ``path``: a list with one dict per packet, in capture order.

    Reads at most ``limit`` packets (None: all). Each row::

        {"time": 0.201314,          # float, seconds since the first packet
         "src": "198.18.0.1",       # outer IP (v4/v6) source; MAC when the packet has no IP
         "dst": "198.18.0.2",       # likewise; None when neither exists (e.g. raw non-IP)
         "protocol": "ICMP",        # innermost layer that is not payload or an ICMP error
                                    #  quote; MLD messages (ICMPv6ML*) folded to MLD,
                                    #  other ICMPv6* to ICMPv6, IGMP* to IGMP
         "length": 148,             # int, bytes on the wire (original length, not snaplen)
         "kind": "unicast",         # or broadcast / multicast, from the outer destination
         "vni": 42,                 # VXLAN VNI of the outermost VXLAN header, else None
         "gre_key": None,           # key of the outermost GRE header that has one, else None
         "layers": ["Ether", "IP", "UDP", "VXLAN", "Ether", "IP", "ICMP"],
                                    # scapy layer class names, outer to inner, without
                                    #  Raw/Padding
         "inner_src": "198.18.1.1", # innermost IP source when there are 2+ IP headers,
         "inner_dst": "198.18.1.2"} #  else None (ICMP error quotes do not count)

    Linktypes Ethernet, raw IP and Linux cooked (SLL/SLL2) are read alike; UDP port 4789
    is dissected as VXLAN and GRE protocol 0x6558 as Ethernet (gretap), over IPv4 and IPv6
    alike (an IPv6 underlay: ``["Ether", "IPv6", "UDP", "VXLAN", ...]``, ip6gre
    ``["Ether", "IPv6", "GRE", ...]``). IPv6 extension headers (the hop-by-hop header of an
    MLD report, IPv6ExtHdrHopByHop) appear in ``layers`` but are not addresses. Raises
    RuntimeError when scapy is missing, OSError/scapy errors on an unreadable file.
    """
    s = _load()
    rows, t0 = [], None
    with s["PcapReader"](path) as reader:
        for pkt in reader:
            if limit is not None and len(rows) >= limit:
                break
            if t0 is None:
                t0 = pkt.time
            rows.append(_row(pkt, t0, s))
    return rows


def _subsequence(wanted, names):
    it = iter(names)
    return all(w in it for w in wanted)  # `in` advances the iterator: order is kept


def matches(rows, layers=None, vni=None, gre_key=None, inner_src=None, inner_dst=None):
    """The rows of :func:`summarize` that satisfy every given criterion (None: any).

    ``layers`` is a list of layer names that must appear in the row's ``layers`` in this
    order, not necessarily adjacent (``["VXLAN", "ICMP"]`` matches
    ``["Ether", "IP", "UDP", "VXLAN", "Ether", "IP", "ICMP"]``, ``["ICMP", "VXLAN"]``
    does not); ``vni``, ``gre_key``, ``inner_src`` and ``inner_dst`` must equal the row's.
    """
    fields = {"vni": vni, "gre_key": gre_key, "inner_src": inner_src, "inner_dst": inner_dst}
    fields = {k: v for k, v in fields.items() if v is not None}
    return [r for r in rows
            if (not layers or _subsequence(layers, r["layers"]))
            and all(r[k] == v for k, v in fields.items())]
