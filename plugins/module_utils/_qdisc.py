# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: link impairments - delay, jitter, loss (netem) and rate (tbf) - on the egress of
lab interfaces: the shapes topo builds, how the kernel holds them, and how they are read back and
set. The ``impair`` kind (:mod:`._resources.impairment`) converges them.

What topo builds as an interface's root qdisc; the root always has handle ``7470:`` ("tp"),
which is how topo tells its own qdisc from anyone else's:

* rate only:                 ``7470: tbf``
* delay, jitter and/or loss: ``7470: netem``
* both:                      ``7470: netem`` with ``7471: tbf`` in its one class ``7470:1``

Rate under netem is a tbf child rather than netem's own ``rate``: the same shaper as the
rate-only case, a queue bounded in time (:data:`TBF_LATENCY_US`) instead of netem's 1000
packets (600 ms at 20 Mbit/s), and measured as accurate (iperf3, 5 s, over a veth at 20 Mbit/s
with 10 ms delay: 19.0 Mbit/s received with the child, 18.96 with netem's rate; 17.6 for both
with 50 ms, where TCP's slow start over a 100 ms RTT takes its share).

A state ("shape") is a dict of what is set: ``delay``/``jitter`` (ms, float), ``loss``
(percent, float), ``rate`` (bit/s, int) and, with rate, ``burst`` (bytes, derived); ``{}``
is no impairment. Values read back are compared with :data:`TOLERANCE`, since the kernel
keeps times in 64 ns psched ticks and loss as a fraction of 2**32 - 1.
"""

from __future__ import annotations

import errno

from ansible_collections.topo.lab.plugins.module_utils._netns import KernelFeatureMissing, NetlinkError

try:
    from pyroute2.netlink.rtnl.tcmsg.common import tick_in_usec as TICKS_PER_US
except ImportError:  # pragma: no cover - run() reports the missing pyroute2
    TICKS_PER_US = 15.625  # psched tick = 64 ns (PSCHED_SHIFT 6)

TC_H_ROOT = 0xFFFFFFFF
#: topo's root qdisc, 7470: ("tp"); the tbf under a netem goes in class 7470:1 as 7471:.
HANDLE = 0x74700000
CHILD_PARENT = HANDLE | 1
CHILD_HANDLE = 0x74710000
NETEM_KEYS = ("delay", "jitter", "loss")
#: tbf's queue: at most 50 ms of traffic waits (tc-tbf's customary latency).
TBF_LATENCY_US = 50000
#: pyroute2 0.9 sends tbf's rate as 32-bit bytes/s (no TCA_TBF_RATE64): about 34.4 Gbit/s.
MAX_RATE = 0xFFFFFFFF * 8
#: Largest delay + jitter netem's 32-bit tick fields hold, in ms (about 274 s).
MAX_DELAY_MS = 0xFFFFFFFF / TICKS_PER_US / 1000.0
#: How far a value read back may be from the declared one and still count as equal.
TOLERANCE = {"delay": 0.002, "jitter": 0.002, "loss": 1e-6, "rate": 8}
UNITS = {"delay": "ms", "jitter": "ms", "loss": "%", "rate": "bit/s", "burst": "B"}
#: The order of a shape's keys in details and diffs (qdisc, child: a kind topo does not build).
ORDER = ("qdisc", "delay", "jitter", "loss", "rate", "burst", "child")
class QdiscMissing(KernelFeatureMissing):
    """The running kernel has no such qdisc (rtnetlink answers ENOENT for an unknown kind);
    the message names the kernel option and module (see _netns.KERNEL_FEATURES)."""


# --------------------------------------------------------------------------- shapes

def burst_bytes(rate, mtu):
    """tbf's bucket in bytes for ``rate`` bit/s on an interface of ``mtu`` bytes: 10 ms of the
    rate (at least rate/HZ for any HZ >= 100, so a timer tick never overflows the bucket), and
    at least two full frames (MTU + 14-byte Ethernet header), since a frame larger than the
    bucket could never be sent."""
    return max(rate // 8 // 100, 2 * (mtu + 14))


def wanted(item, mtu):
    """The shape of one declared item (see the module docstring); 0 counts as unset.
    Raises ValueError for values the kernel cannot hold."""
    label = "%s/%s" % (item["netns"], item["ifname"])
    shape = dict((k, float(item[k])) for k in NETEM_KEYS if item.get(k))
    if any(v < 0 for v in shape.values()):
        raise ValueError("impairment of %s: values must not be negative" % label)
    if shape.get("loss", 0) > 100:
        raise ValueError("impairment of %s: loss is a percentage, at most 100" % label)
    if shape.get("delay", 0) + shape.get("jitter", 0) >= MAX_DELAY_MS:
        raise ValueError("impairment of %s: delay + jitter must stay below %d ms" % (label, MAX_DELAY_MS))
    if item.get("rate"):
        if not 8 <= item["rate"] <= MAX_RATE:
            raise ValueError("impairment of %s: rate must be 8 to %d bit/s" % (label, MAX_RATE))
        shape["rate"] = int(item["rate"])
        shape["burst"] = burst_bytes(shape["rate"], mtu)
    return shape


def _tbf_shape(msg):
    parms = msg.get_attr("TCA_OPTIONS").get_attr("TCA_TBF_PARMS")
    rate = parms["rate"]  # bytes/s
    return {"rate": rate * 8, "burst": parms["buffer"] / TICKS_PER_US * rate / 1e6}


def decode(root, child):
    """The shape of topo's qdisc from the root qdisc message of an interface and the message
    of the child in class 7470:1 (None when absent); None when the root is not topo's. A kind
    topo does not build there shows as ``qdisc``/``child``, so it never matches."""
    if root is None or root["handle"] != HANDLE:
        return None
    kind = root.get_attr("TCA_KIND")
    if kind == "tbf":
        return _tbf_shape(root)
    if kind != "netem":
        return {"qdisc": kind}
    opts = root.get_attr("TCA_OPTIONS")
    shape = dict((k, opts[k] / TICKS_PER_US / 1000.0) for k in ("delay", "jitter") if opts[k])
    if opts["loss"]:
        shape["loss"] = opts["loss"] * 100.0 / 0xFFFFFFFF
    if child is not None:
        shape.update(_tbf_shape(child) if child.get_attr("TCA_KIND") == "tbf"
                     else {"child": child.get_attr("TCA_KIND")})
    return shape


def differences(have, want):
    """{key: (have, want)} of the values that differ beyond the kernel's rounding."""
    out = {}
    for key in set(have) | set(want):
        a, b = have.get(key), want.get(key)
        if a is None or b is None or isinstance(a, str):
            same = a == b
        else:
            same = abs(a - b) <= TOLERANCE.get(key, 0.01 * b + 1)  # burst: 1 %
        if not same:
            out[key] = (a, b)
    return out


def _num(key, v):
    """One value as shown in details and diffs, without its unit."""
    if v is None or isinstance(v, str):
        return v or "none"
    return "%d" % round(v) if key in ("rate", "burst") else repr(round(v, 4 if key == "loss" else 3))


def _ordered(shape):
    return sorted(shape.items(), key=lambda kv: ORDER.index(kv[0]))


def _unit(key):
    return " " + UNITS[key] if key in UNITS else ""


def describe(shape):
    """``delay 50.0 ms, rate 20000000 bit/s, burst 25000 B``; ``none`` for {}."""
    return ", ".join("%s %s%s" % (k, _num(k, v), _unit(k)) for k, v in _ordered(shape)) or "none"


def describe_diff(diff):
    """``delay 10.0 -> 50.0 ms, loss none -> 1.0 %``."""
    return ", ".join("%s %s -> %s%s" % (k, _num(k, a), _num(k, b), _unit(k)) for k, (a, b) in _ordered(diff))


# --------------------------------------------------------------------------- kernel

def read_roots(ipr):
    """{ifindex: (root, child)} qdisc messages of every interface of one namespace, in one
    dump: the root qdisc (parent TC_H_ROOT) and whatever sits in class 7470:1."""
    roots, children = {}, {}
    for msg in ipr.get_qdiscs():
        if msg["parent"] == TC_H_ROOT:
            roots[msg["index"]] = msg
        elif msg["parent"] == CHILD_PARENT:
            children[msg["index"]] = msg
    return dict((i, (roots.get(i), children.get(i))) for i in set(roots) | set(children))


def _tbf(shape):
    return dict(kind="tbf", rate=shape["rate"] // 8, burst=int(shape["burst"]), latency=TBF_LATENCY_US)


def _netem_limit(shape):
    """netem's queue in packets: what ``delay + jitter`` holds at the declared rate (else
    10 Gbit/s, a veth's order of speed) in 1514-byte frames, twice over, at least 1000 (tc's
    default). Too small a limit turns delay into loss once a window exceeds it."""
    held = (shape.get("delay", 0) + shape.get("jitter", 0)) / 1000.0 * shape.get("rate", 10 ** 10) / 8
    return max(1000, int(2 * held / 1514))


def apply(ipr, index, have_kind, have, want):
    """Make the qdiscs of interface ``index`` match shape ``want``; ``have_kind`` is the kind
    of topo's root there now (None: none, or someone else's root, which is replaced)."""
    if not want:
        ipr.tc("del", index=index, handle=HANDLE, parent=TC_H_ROOT)
        return
    kind = "netem" if any(k in want for k in NETEM_KEYS) else "tbf"
    if have_kind not in (None, kind):  # a qdisc cannot change kind in place
        ipr.tc("del", index=index, handle=HANDLE, parent=TC_H_ROOT)
        have_kind = None
    try:
        if kind == "tbf":
            ipr.tc("replace", index=index, handle=HANDLE, parent=TC_H_ROOT, **_tbf(want))
            return
        us = dict((k, int(round(want.get(k, 0) * 1000))) for k in ("delay", "jitter"))
        ipr.tc("replace", kind="netem", index=index, handle=HANDLE, parent=TC_H_ROOT,
               loss=want.get("loss", 0), limit=_netem_limit(want), **us)
    except NetlinkError as exc:
        raise QdiscMissing(kind) if exc.code in (errno.ENOENT, errno.EOPNOTSUPP) else exc
    if "rate" in want:
        try:
            ipr.tc("replace", index=index, handle=CHILD_HANDLE, parent=CHILD_PARENT, **_tbf(want))
        except NetlinkError as exc:
            raise QdiscMissing("tbf") if exc.code in (errno.ENOENT, errno.EOPNOTSUPP) else exc
    elif have_kind == "netem" and ("rate" in have or "child" in have):
        ipr.tc("del", index=index, parent=CHILD_PARENT)
