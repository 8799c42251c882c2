"""Check results: the raw results of the collection's check modules turned into check rows.

:mod:`topo.runner` hands over each check task's raw result as a :class:`ModuleResult`
(host, module, the module's ``res``); :func:`check_rows` turns them into the check rows the
CLI prints, ``--json`` carries and :mod:`topo.report` writes. The kind of a row is decided
by an explicit check type, never by which keys a result happens to have:

* ``topo.lab.ping`` (role verify_ping, one call per build host): every entry of ``results``
  is one ``ping`` row, from its ``from`` node (or, for a call made inside a node, that
  host), and so is every target of the columns of ``source_results`` (what role
  verify_ping gets: one entry per source node); a call that failed without results is one
  failed row carrying its message;
* ``topo.lab.capture``, ``topo.lab.cast``, ``topo.lab.iperf`` (roles verify_capture,
  verify_cast, verify_iperf) loop over checks: each loop item's ``item.type`` (``capture``,
  one of ``api.CAST_TYPES``, ``iperf3``) picks its decoder.

Row shapes:

* ping: ``{type: ping, from, node, address, expect, observed, ok, rtt_ms, sent, received,
  msg?}`` (``rtt_ms`` milliseconds or None; ``msg`` when the source could not ping at all);
* capture: ``{type: capture, from, on: "node:iface", description, expect, ok, matched,
  total, seen, path, rows (at most 20 packet rows), msg?}``;
* step (casts and iperf3): ``{type, name, from, description, expected, observed, ok,
  figures, details, capture?, msg?}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

#: The collection's check modules and the role that runs each.
PING_MODULE = "topo.lab.ping"
LOOP_MODULES = ("topo.lab.capture", "topo.lab.cast", "topo.lab.iperf")
CHECK_MODULES = (PING_MODULE,) + LOOP_MODULES


@dataclass
class ModuleResult:
    """One task result of a check module, as the runner saw it: ``host`` the task ran on,
    ``module`` its fully qualified name (``topo.lab.ping``), ``res`` the module's (or the
    loop's) result dict, untouched."""

    host: str
    module: str
    res: dict


def ping_row(host: str, entry: dict) -> dict:
    """One target of a ``topo.lab.ping`` result as a ping row (see the module docstring):
    its source is the entry's ``from`` (a batched call on build host ``host``), else ``host``."""
    row = {k: v for k, v in entry.items() if k != "from"}
    row.update(type="ping", **{"from": entry.get("from") or host})
    return row


def column_rows(source: dict) -> list[dict]:
    """The ping rows of one entry of a ``topo.lab.ping`` result's ``source_results`` (one
    source node's targets in columns, each a comma-separated string; see the module's
    RETURN), each the same row as :func:`ping_row` of that target's ``results`` entry (same
    keys, same order, same types: ``rtt_ms`` a float or None, ``sent``/``received`` ints)."""
    from ansible_collections.topo.lab.plugins.module_utils.api import ping_entry

    def column(key):   # a source has an address at least: "" is one empty value
        return source[key].split(",")

    fail = set(column("expect_fail"))
    errors = dict((i, why) for i, why in source.get("errors") or [])
    return [ping_row(source["from"], ping_entry(
        source["from"], {"address": address, "node": node, "expect": "fail" if address in fail else "pass"},
        {"sent": int(sent), "received": int(received), "rtt_ms": float(rtt) if rtt else None,
         "error": errors.get(i)}))
        for i, (address, node, sent, received, rtt) in enumerate(zip(
            column("addresses"), column("nodes"), column("sent"), column("received"), column("rtt_ms")))]


def ping_result_rows(host: str, res: dict) -> list[dict]:
    """The ping rows of one ``topo.lab.ping`` result: its ``results`` entries, then the
    targets of its ``source_results``. A call that failed with no results (it could not
    run: not root, a bad argument) gives one failed row with its message, so the failure is
    not lost when the role ignores it."""
    entries = [e for e in res.get("results") or [] if isinstance(e, dict)]
    sources = [s for s in res.get("source_results") or [] if isinstance(s, dict)]
    if entries or sources or not res.get("failed"):
        return [ping_row(host, e) for e in entries] + [r for s in sources for r in column_rows(s)]
    msg = str(res.get("msg") or "failed")
    return [{"address": "", "node": "", "expect": "pass", "observed": msg, "ok": False, "rtt_ms": None,
             "sent": 0, "received": 0, "msg": msg, "type": "ping", "from": host}]


def capture_row(host: str, res: dict) -> dict:
    """A capture check's result (one loop item of the verify_capture role) as a check row:
    what was expected, how many packets matched of how many, the layer stacks seen
    (the three most frequent, ``"2 x Ether/IP/UDP (vni 42)"``)."""
    item = res["item"]
    rows = res.get("rows") or []
    stacks: dict[str, int] = {}
    for row in rows:
        key = "/".join(row.get("layers") or []) + (f" (vni {row['vni']})" if row.get("vni") is not None else "")
        stacks[key] = stacks.get(key, 0) + 1
    seen = ", ".join(f"{n} x {k}" for k, n in sorted(stacks.items(), key=lambda kv: -kv[1])[:3])
    return {"type": "capture", "from": host, "on": f"{item['node']}:{item['interface']}",
            "description": item["description"], "expect": item["expect"], "ok": not res.get("failed"),
            "matched": res.get("matched", 0), "total": res.get("total", 0), "seen": seen,
            "path": res.get("path"), "rows": rows[:20],
            **({"msg": res["msg"]} if res.get("failed") else {})}


def step_row(host: str, res: dict) -> dict:
    """A cast or iperf3 check's result (one loop item of the topo.lab.cast / topo.lab.iperf
    task) as a check row: {type, name, description, expected, observed, ok, figures,
    details, capture?, msg?}. A module that could not run at all (no result keys) still
    gives a failed row carrying its message."""
    item = res["item"]
    row = {"type": item["type"], "name": item["name"], "from": host, "description": item.get("description", ""),
           "expected": res.get("expected") or "", "observed": res.get("observed") or "",
           "ok": bool(res.get("ok")) and not res.get("failed"), "figures": res.get("figures") or {},
           "details": res.get("details") or {}}
    if res.get("capture"):
        where = item.get("capture") or {}
        row["capture"] = dict(res["capture"], on=f"{where.get('node')}:{where.get('interface')}")
    if res.get("failed") or not row["ok"]:
        row["msg"] = res.get("msg") or "failed"
        if not row["observed"]:
            row["observed"] = row["msg"]
    return row


def _decoders() -> dict[str, Callable[[str, dict], dict]]:
    """Decoder of one loop item, by check type: capture, each cast type, iperf3."""
    from ansible_collections.topo.lab.plugins.module_utils.api import STEP_TYPES
    return {"capture": capture_row, **{t: step_row for t in STEP_TYPES}}


def check_rows(results: Iterable[ModuleResult]) -> list[dict]:
    """Check rows of a verify run, in the order the results came: ping rows from
    ``topo.lab.ping``, one row per loop item of the looping check modules. Results of other
    modules, loop items without a dict ``item`` and unknown check types give no rows."""
    decoders = None
    rows: list[dict] = []
    for r in results:
        if r.module == PING_MODULE:
            rows += ping_result_rows(r.host, r.res)
        elif r.module in LOOP_MODULES:
            decoders = decoders or _decoders()
            for entry in r.res.get("results") or []:
                item = entry.get("item") if isinstance(entry, dict) else None
                decode = decoders.get(item.get("type")) if isinstance(item, dict) else None
                if decode is not None:
                    rows.append(decode(r.host, entry))
    return rows


def summary(rows: list[dict]) -> dict:
    """``{total, passed, failed}`` of check rows."""
    passed = sum(1 for c in rows if c.get("ok"))
    return {"total": len(rows), "passed": passed, "failed": len(rows) - passed}
