#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: ping
short_description: Ping a list of addresses from inside a lab node and compare with what is expected
description:
  - Runs on a lab node (through the C(topo.lab.netns) connection, or any connection into the
    node). Pings every target with iputils C(ping) in parallel and reports, per target,
    whether it answered and the average round-trip time.
  - A target with O(targets[].expect=fail) passes when it does NOT answer (a pair that
    must not reach). The task fails when any target's outcome differs from its expectation,
    so a plain C(ansible-playbook) run fails too.
  - This is a check, not a change - it always reports C(changed=false) and runs in check mode.
author: topo developers
requirements: [iputils ping in the node]
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
  idempotent: {support: full}
options:
  targets:
    description: What to ping.
    type: list
    elements: dict
    default: []
    suboptions:
      address: {description: IPv4 address., type: str, required: true}
      node: {description: Name of the node that owns the address (for the report)., type: str, default: ""}
      expect: {description: C(pass) if it must answer, C(fail) if it must not., type: str, choices: [pass, fail], default: pass}
  count: {description: Echo requests per target; one answer is enough to pass., type: int, default: 3}
  interval: {description: Seconds between requests (iputils allows 0.002 and more as root)., type: float, default: 0.2}
  timeout: {description: Seconds to wait for the last answer (C(ping -W))., type: int, default: 2}
  parallel: {description: Targets pinged at once., type: int, default: 16}
"""

EXAMPLES = r"""
- name: Everyone on the LAN answers, the other lab does not
  topo.lab.ping:
    targets:
      - {address: 172.16.0.2, node: h2}
      - {address: 172.17.0.2, node: other, expect: fail}
"""

RETURN = r"""
results:
  description: One entry per target.
  returned: always
  type: list
  elements: dict
  sample: [{address: 172.16.0.2, node: h2, expect: pass, observed: pass, ok: true, rtt_ms: 0.051, received: 3, sent: 3}]
failed_targets:
  description: Targets whose outcome differs from the expectation.
  returned: always
  type: list
  elements: dict
"""

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

RTT = re.compile(r"= [\d.]+/([\d.]+)/")
RECEIVED = re.compile(r"(\d+) packets transmitted, (\d+) received")


def ping_one(target, count, interval, timeout):
    """Ping one target with argv (no shell); return the result entry."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", str(timeout),
            target["address"]]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout + count * (interval + 1) + 5)
        out = proc.stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        out = str(exc)
    m = RECEIVED.search(out)
    sent, received = (int(m.group(1)), int(m.group(2))) if m else (count, 0)
    rtt = RTT.search(out)
    observed = "pass" if received > 0 else "fail"
    return {
        "address": target["address"], "node": target["node"], "expect": target["expect"],
        "observed": observed, "ok": observed == target["expect"],
        "rtt_ms": float(rtt.group(1)) if rtt else None, "sent": sent, "received": received,
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type="list", elements="dict", default=[], options=dict(
                address=dict(type="str", required=True),
                node=dict(type="str", default=""),
                expect=dict(type="str", choices=["pass", "fail"], default="pass"),
            )),
            count=dict(type="int", default=3),
            interval=dict(type="float", default=0.2),
            timeout=dict(type="int", default=2),
            parallel=dict(type="int", default=16),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["targets"] and shutil.which("ping") is None:
        module.fail_json(msg="ping is not installed in this node (Debian/Ubuntu: "
                             "apt-get install iputils-ping)")
    with ThreadPoolExecutor(max_workers=max(1, p["parallel"])) as pool:
        results = list(pool.map(
            lambda t: ping_one(t, p["count"], p["interval"], p["timeout"]), p["targets"]))
    failed = [r for r in results if not r["ok"]]
    if failed:
        module.fail_json(
            msg="%d of %d ping checks failed: %s" % (len(failed), len(results), ", ".join(
                "%s (%s) expected %s, observed %s" % (r["node"], r["address"], r["expect"],
                                                     r["observed"]) for r in failed)),
            results=results, failed_targets=failed)
    module.exit_json(changed=False, results=results, failed_targets=[])


if __name__ == "__main__":
    main()
