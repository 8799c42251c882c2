# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: what a check dict must look like - one argument spec per check type
(unicast, broadcast, multicast, anycast, relay, iperf3, capture), checked with Ansible's
``ArgumentSpecValidator``, plus the few rules a spec cannot say (ranges, fields that
must agree).

:func:`validate` is the one entry: ``(params, problems)``, where ``params`` is the check
with its defaults filled in (every field of its spec present) and ``problems`` a list of
messages, each naming the check and the field::

    "multicast check m1: leave names h3, not members"
    "broadcast check b1: broadcast is IPv4-only; use multicast to ff02::1"
    "unicast check u1: missing required arguments: port"
    "broadcast check b1: receivers[1] (ghost) has neither netns nor container"

topo.lab.iperf and topo.lab.capture give their spec to ``AnsibleModule`` (so their
documentation lists it) and call :func:`rules` for the rest; topo.lab.cast takes any
dict (the type picks the spec) and calls :func:`validate`.
"""

from __future__ import absolute_import, division, print_function

import ipaddress
import re

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.topo.lab.plugins.module_utils._vocabulary import CAST_TYPES

__metaclass__ = type

#: The address family of a check: absent (None) or 4 is IPv4, 6 is IPv6 (every address of
#: the check is then IPv6, a multicast group is in ff00::/8 and ``ttl`` is the hop limit).
FAMILY = dict(type="int", choices=[4, 6])
#: Why a broadcast check cannot be IPv6 (IPv6 has no broadcast).
NO_BROADCAST6 = "broadcast is IPv4-only; use multicast to ff02::1"

#: How the controller reaches a node on a remote build host: the host's SSH settings as in
#: its inventory (``name``, ``ansible_host``, ``ansible_user``, ``ansible_port``,
#: ``ansible_ssh_private_key_file``, ``ansible_ssh_common_args``); absent - this machine
#: (module_utils/_process.py, ``remote``).
SSH = dict(type="dict")
#: A node taking part (a *participant*): its name, where it lives, the address it sends from.
PLACE = dict(
    node=dict(type="str", required=True),
    netns=dict(type="str"),
    container=dict(type="str"),
    address=dict(type="str"),
    ssh=SSH,
)
#: A multicast sender or member: ``interface`` is the address of the interface it sends
#: or joins on (None: its ``address``).
MEMBER = dict(PLACE, interface=dict(type="str"))
#: A multicast silent node: ``join`` lists the other groups it is a member of; ``wire``
#: the interfaces whose wire is captured (``wire: clean`` checks).
SILENT_MEMBER = dict(PLACE, join=dict(type="list", elements="str", default=[]),
                     wire=dict(type="list", elements="str", default=[]))
#: An anycast client: ``expect`` is the node name of the server that must answer.
CLIENT = dict(PLACE, expect=dict(type="str", required=True))
#: A capture while a cast or iperf3 check runs.
CAPTURE_ON = dict(
    node=dict(type="str", required=True),
    interface=dict(type="str", required=True),
    netns=dict(type="str"),
    container=dict(type="str"),
    filter=dict(type="str"),
    ssh=SSH,
)
#: A payload: exactly one of ``text`` (str, sent UTF-8), ``json`` (any value, sent as
#: compact sorted JSON) or ``bytes`` (a count of random bytes, 1..65507).
PAYLOAD = dict(text=dict(type="raw"), json=dict(type="raw"), bytes=dict(type="int"))
_PAYLOAD_KEYS = [["text", "json", "bytes"]]


def _places(options, required=False):
    return dict(type="list", elements="dict", options=options, required=required,
                **({} if required else {"default": []}))


def _cast(kind, payloads_required=True, **fields):
    """The spec of cast check ``kind``: the common fields, then ``fields``."""
    spec = dict(
        type=dict(type="str", required=True, choices=[kind]),
        name=dict(type="str", required=True),
        description=dict(type="str", default=""),
        timeout=dict(type="float", default=2.0),
        family=FAMILY,
        payloads=dict(type="list", elements="dict", options=PAYLOAD, required=payloads_required,
                      mutually_exclusive=_PAYLOAD_KEYS, required_one_of=_PAYLOAD_KEYS,
                      **({} if payloads_required else {"default": []})),
        capture=dict(type="dict", options=CAPTURE_ON),
    )
    spec.update(fields)
    return spec


_PORT = dict(type="int", required=True)
_ONE = dict(type="dict", options=PLACE, required=True)

#: check type -> its argument spec (the check dict's fields).
SPECS = {
    "unicast": _cast(
        "unicast", proto=dict(type="str", choices=["udp", "tcp"], default="udp"),
        sender=_ONE, receiver=_ONE, address=dict(type="str", required=True), port=_PORT,
        expect=dict(type="str", choices=["pass", "fail"], default="pass")),
    "broadcast": _cast(
        "broadcast", sender=_ONE, address=dict(type="str", required=True), port=_PORT,
        receivers=_places(PLACE), silent=_places(PLACE)),
    "multicast": _cast(
        "multicast", group=dict(type="str", required=True), port=_PORT,
        ttl=dict(type="int", default=1), senders=_places(MEMBER, required=True),
        members=_places(MEMBER), silent=_places(SILENT_MEMBER),
        leave=dict(type="list", elements="str", default=[]), ack=dict(type="bool", default=False),
        wire=dict(type="str", choices=["clean"]), settle=dict(type="float", default=12.0)),
    "anycast": _cast(
        "anycast", payloads_required=False, address=dict(type="str", required=True), port=_PORT,
        protos=dict(type="list", elements="str", choices=["tcp", "udp"], default=["tcp", "udp"]),
        servers=_places(PLACE, required=True), clients=_places(CLIENT, required=True)),
    "relay": _cast(
        "relay", sender=_ONE, relay=_ONE, address=dict(type="str", required=True), port=_PORT,
        out_address=dict(type="str", required=True), out_port=_PORT,
        receivers=_places(PLACE), silent=_places(PLACE)),
    "iperf3": dict(
        type=dict(type="str", choices=["iperf3"], default="iperf3"),
        name=dict(type="str", required=True),
        description=dict(type="str", default=""),
        client=_ONE,
        server=_ONE,
        address=dict(type="str", required=True),
        family=FAMILY,
        proto=dict(type="str", choices=["tcp", "udp"], default="tcp"),
        duration=dict(type="int", default=3),
        parallel=dict(type="int", default=1),
        lengths=dict(type="list", elements="int", default=[]),
        repeats=dict(type="int", default=3),
        bitrate=dict(type="float"),
        min_bps=dict(type="float"),
        port=dict(type="int", default=5201),
        timeout=dict(type="float"),
        capture=dict(type="dict", options=CAPTURE_ON),
    ),
    # the capture check is topo.lab.capture's parameters (role verify_capture maps them)
    "capture": dict(
        netns=dict(type="str", required=True),
        interface=dict(type="str", required=True),
        filter=dict(type="str"),
        count=dict(type="int", default=1000),
        snaplen=dict(type="int", default=262144),
        path=dict(type="path", required=True),
        ssh=SSH,
        traffic=dict(type="list", elements="dict", default=[], options=dict(
            argv=dict(type="list", elements="str", required=True),
            netns=dict(type="str"),
            ssh=SSH,
            timeout=dict(type="float", default=60),
        )),
        duration=dict(type="float", default=3),
        settle=dict(type="float", default=0.5),
        listen_timeout=dict(type="float", default=10),
        max_rows=dict(type="int", default=200),
        expect=dict(type="dict", options=dict(
            layers=dict(type="list", elements="str"),
            vni=dict(type="int"),
            gre_key=dict(type="int"),
            inner_src=dict(type="str"),
            inner_dst=dict(type="str"),
            min_packets=dict(type="int", default=1),
        )),
    ),
}

#: Participant fields of each type: single participants, then lists of them.
_SINGLE = {"unicast": ("sender", "receiver"), "broadcast": ("sender",), "relay": ("sender", "relay"),
           "iperf3": ("client", "server")}
_LISTS = {"broadcast": ("receivers", "silent"), "relay": ("receivers", "silent"),
          "multicast": ("senders", "members", "silent"), "anycast": ("servers", "clients")}
#: Groups that must not share a node: (who must get it, who must not).
_DISJOINT = {"broadcast": ("receivers", "silent"), "relay": ("receivers", "silent"),
             "multicast": ("members", "silent")}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


# --------------------------------------------------------------------------- rules

def _participants(kind, check):
    """('sender h1' / 'receivers[1] (h2)', participant) of every participant of ``check``."""
    out = [("%s %s" % (key, check[key].get("node")), check[key])
           for key in _SINGLE.get(kind, ()) if check.get(key)]
    for key in _LISTS.get(kind, ()):
        out += [("%s[%d] (%s)" % (key, i, p.get("node")), p)
                for i, p in enumerate(check.get(key) or [])]
    return out


def _port(check, key):
    v = check.get(key)
    if v is not None and not 0 < v < 65536:
        return ["%s must be a port number 1..65535, got %r" % (key, v)]
    return []


def _positive(check, *keys):
    return ["%s must be positive, got %s" % (k, check[k]) for k in keys
            if check.get(k) is not None and check[k] <= 0]


#: Address fields of each type (besides the participants' ``address``/``interface``).
_ADDRESSES = {"unicast": ("address",), "broadcast": ("address",), "multicast": ("group",),
              "anycast": ("address",), "relay": ("address", "out_address"),
              "iperf3": ("address",)}


def _family_rules(kind, check):
    """Every address of ``check`` is of its family (``family`` 6: IPv6, else IPv4), a
    multicast group is a multicast address of it, and broadcast is IPv4-only."""
    family = check.get("family") or 4
    if kind == "broadcast" and family == 6:
        return [NO_BROADCAST6]
    fields = [(key, check.get(key)) for key in _ADDRESSES.get(kind, ())]
    for where, p in _participants(kind, check):
        fields += [("%s %s" % (where, key), p.get(key)) for key in ("address", "interface")]
    if kind == "multicast":
        fields += [("silent %s join" % p["node"], g) for p in check["silent"] for g in p["join"]]
    probs = []
    for key, value in fields:
        if value is None:
            continue
        try:
            addr = ipaddress.ip_address(str(value))
        except ValueError:
            if not key.endswith("interface"):  # an interface may be named
                probs.append("%s %r is not an IP address" % (key, value))
            continue
        if addr.version != family:
            probs.append("%s %s is not an IPv%d address (the check's family%s)" % (
                key, value, family, "" if check.get("family") else " when it has none"))
        elif (key == "group" or key.endswith(" join")) and not addr.is_multicast:
            probs.append("%s %s is not a multicast group (%s)" % (
                key, value, "ff00::/8" if family == 6 else "224.0.0.0/4"))
    return probs


def _cast_rules(kind, check):
    probs = _port(check, "port") + _port(check, "out_port")
    if check["timeout"] <= 0:
        probs.append("timeout must be a positive number of seconds, got %r" % (check["timeout"],))
    if kind != "anycast" and not check["payloads"]:
        probs.append("payloads must not be empty")
    for i, p in enumerate(check["payloads"] or [], 1):
        if p.get("bytes") is not None and not 0 < p["bytes"] <= 65507:
            probs.append("payload %d: bytes must be 1..65507, got %r" % (i, p["bytes"]))
    if kind == "multicast":
        members = [m["node"] for m in check["members"]]
        ghosts = [n for n in check["leave"] if n not in members]
        if ghosts:
            probs.append("leave names %s, not members" % ", ".join(map(str, ghosts)))
        if not 0 <= check["ttl"] <= 255:
            probs.append("ttl must be 0..255, got %r" % (check["ttl"],))
        if check["wire"] == "clean" and not any(p["wire"] for p in check["silent"]):
            probs.append("wire: clean needs silent nodes with the interfaces to capture (silent[].wire)")
        if check["settle"] < 0:
            probs.append("settle must be 0 or more seconds, got %r" % (check["settle"],))
    if kind == "anycast" and not check["protos"]:
        probs.append("protos must be a non-empty list of tcp and udp, got []")
    groups = _DISJOINT.get(kind)
    if groups:
        listed = [{p["node"] for p in check[g]} for g in groups]
        both = sorted(listed[0] & listed[1])
        if both:
            probs.append("%s listed as both %s and %s" % (", ".join(both), groups[0], groups[1]))
    return probs


#: The most times an iperf3 sweep may run (``repeats``): 20 x a 6-length sweep of 2 s runs
#: is already 4 minutes.
MAX_REPEATS = 20


def _iperf3_rules(check):
    probs = []
    if not _NAME.match(check["name"]):
        probs.append("name %r: use letters, digits, '_', '.', '-' (it names the capture file)"
                     % check["name"])
    for key in ("duration", "parallel"):
        if check[key] < 1:
            probs.append("%s must be at least 1, got %d" % (key, check[key]))
    if not 1 <= check["repeats"] <= MAX_REPEATS:
        probs.append("repeats must be 1 to %d (runs of the sweep), got %d" % (MAX_REPEATS, check["repeats"]))
    probs += _port(check, "port")
    bad = [n for n in check["lengths"] if n < 1]
    if bad:
        probs.append("lengths must be positive byte counts, got %s" % bad)
    return probs + _positive(check, "bitrate", "min_bps", "timeout")


def _capture_rules(params):
    probs = ["%s must be at least 1, got %d" % (k, params[k]) for k in ("count", "snaplen")
             if params[k] < 1]
    if any(not t["argv"] for t in params["traffic"]):
        probs.append("every traffic entry needs a non-empty argv")
    return probs


def rules(kind, check):
    """What the spec of ``kind`` cannot say about ``check`` (validated against it):
    ranges, participants without a place, fields that must agree. A list of messages
    naming the field, without the check's name."""
    if kind == "capture":
        return _capture_rules(check)
    probs = ["%s has neither netns nor container" % where
             for where, p in _participants(kind, check)
             if not (p.get("netns") or p.get("container"))]
    if check.get("capture") and not (check["capture"].get("netns") or check["capture"].get("container")):
        probs.append("capture needs netns or container, got %r" % (check["capture"],))
    probs += _family_rules(kind, check)
    if kind == "iperf3":
        return probs + _iperf3_rules(check)
    return probs + _cast_rules(kind, check)


# --------------------------------------------------------------------------- entry

def _drop_none(value, spec):
    """``value`` without the keys whose value is None, following ``spec`` into its
    sub-options (a null field counts as absent: it gets its default, or is reported as
    missing when required)."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        if v is None:
            continue
        sub = (spec.get(key) or {}).get("options")
        if sub is not None and isinstance(v, list):
            v = [_drop_none(x, sub) for x in v]
        elif sub is not None:
            v = _drop_none(v, sub)
        out[key] = v
    return out


def _message(error):
    if isinstance(error, UnsupportedError):
        return "unknown fields: %s" % str(error).split(". Supported parameters")[0]
    return str(error)


def validate(check, types=CAST_TYPES):
    """Validate ``check`` against the spec of its ``type``, which must be one of
    ``types``. Returns ``(params, problems)``: ``params`` is the check with every field of
    the spec (defaults filled in, values converted to their types), ``problems`` the
    messages ``"<type> check <name>: <what is wrong, naming the field>"`` (empty: the
    check can run)."""
    if not isinstance(check, dict):
        return check, ["the check must be a dict, got %r" % (check,)]
    kind, name = check.get("type"), check.get("name")
    if kind not in types or kind not in SPECS:
        return check, ["check %s: type %r is not a %s check (one of %s)" % (
            name, kind, "cast" if types == CAST_TYPES else "known", ", ".join(types))]
    spec = SPECS[kind]
    result = ArgumentSpecValidator(spec).validate(_drop_none(check, spec))
    params = result.validated_parameters
    probs = [_message(e) for e in result.errors]
    if not probs:
        probs = rules(kind, params)
    return params, ["%s check %s: %s" % (kind, name, p) for p in probs]
