# -*- coding: utf-8 -*-
"""Vocabulary shared by the modules and the front end (via ``api``), in a module light
enough for the front end to import at start-up: the check types topo runs, the pattern
of lab, node and bridge names, and what a ping target's result says (:func:`ping_entry`:
topo.lab.ping writes it, the front end reads its columns back into the same entries)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

#: Checks whose traffic is datagrams (or a TCP stream) between node sockets, run by
#: topo.lab.cast from the build host (role verify_cast).
CAST_TYPES = ("unicast", "broadcast", "multicast", "anycast", "relay")
#: Checks run from the build host one item at a time: the casts and iperf3 (topo.lab.iperf).
STEP_TYPES = CAST_TYPES + ("iperf3",)

#: Lab, node and bridge names: they become parts of namespace names (``topo-<lab>-<node>``),
#: lock files and Ansible host names. The front end's model validates names with it; the
#: modules refuse a lab name that does not match.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"


def ping_entry(source, target, outcome):
    """The result entry of one ping target (``target``: {address, node, expect}; ``outcome``:
    {sent, received, rtt_ms, error} as the prober reports it; ``source``: the source node's
    name, or None for a call made inside a node): what was expected, what was observed. A
    target that could not be checked (``outcome["error"]``: its source could not ping at
    all, or the kernel kept refusing the requests) fails, also when it must not answer."""
    observed = "pass" if outcome["received"] > 0 else "fail"
    out = {} if source is None else {"from": source}
    out.update(address=target["address"], node=target["node"], expect=target["expect"],
               observed=observed, ok=observed == target["expect"] and not outcome["error"],
               rtt_ms=outcome["rtt_ms"], sent=outcome["sent"], received=outcome["received"])
    if outcome["error"]:
        out["msg"] = outcome["error"]
    return out
