# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the payloads of a cast check - made into bytes, hashed, shown.

A check's ``payloads`` (validated by :mod:`.specs`) is a list of dicts with exactly one of
``text`` (str), ``json`` (any value) or ``bytes`` (a count); :func:`encode` turns them
into what the senders send and the receivers are judged against::

    [{"index": 1,                 # 1-based, in the check's order
      "kind": "text",             # text | json | bytes
      "data": b"Hello",           # the bytes sent
      "length": 5,                # len(data), bytes
      "sha256": "185f8db3..."}]   # hex SHA-256 of data

``text`` is UTF-8; ``json`` is ``json.dumps`` with separators ``(",", ":")`` and sorted
keys, UTF-8; ``bytes`` are drawn from ``urandom`` at each run (new bytes every run).
"""

from __future__ import absolute_import, division, print_function

import base64
import hashlib
import json
import os

__metaclass__ = type


class PayloadError(ValueError):
    """A payload that is none of text / json / bytes (1..65507)."""


def encode(payloads, urandom=os.urandom):
    """The bytes of each payload (see the module docstring for the shape).
    PayloadError on a payload that is none of text / json / bytes N (1..65507)."""
    out = []
    for i, p in enumerate(payloads or [], 1):
        given = [k for k in ("text", "json", "bytes") if isinstance(p, dict) and p.get(k) is not None]
        if len(given) != 1:
            raise PayloadError("payload %d must be one of {text: ...}, {json: ...}, {bytes: N}: %r"
                               % (i, p))
        kind = given[0]
        if kind == "text":
            data = str(p["text"]).encode("utf-8")
        elif kind == "json":
            data = json.dumps(p["json"], separators=(",", ":"), sort_keys=True).encode("utf-8")
        else:
            n = p["bytes"]
            if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= 65507:
                raise PayloadError("payload %d: bytes must be 1..65507, got %r" % (i, n))
            data = urandom(n)
        out.append({"index": i, "kind": kind, "data": data, "length": len(data),
                    "sha256": hashlib.sha256(data).hexdigest()})
    return out


def public(payloads):
    """The encoded payloads as results show them: ``[{kind, length, sha256}]``."""
    return [{"kind": p["kind"], "length": p["length"], "sha256": p["sha256"]} for p in payloads]


def b64(payloads):
    """The encoded payloads' bytes in base64 (ASCII str), as the agents take them."""
    return [base64.b64encode(p["data"]).decode("ascii") for p in payloads]


def b64_text(text):
    """``text`` (str) as UTF-8 in base64, for a request that is not one of the payloads."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
