#!/usr/bin/env python3
"""Benchmark a lab spread over three build hosts against the same lab on one (issue 12).

The build hosts are the simulated ones of tests/multihost (containers of the ``topo-host``
image with their own sshd and ``/run/netns``, on an underlay bridge in a test namespace;
topo runs in a controller namespace and reaches them over real SSH: see
tests/multihost/conftest.py). For each size N it writes the chain n1 -- ... -- nN
(bench/run.py's topology) and, in one run, alternating the two cases R times:

* ``one``: ``--hosts`` naming bh1 alone: the whole chain on one remote host;
* ``three``: ``--hosts`` naming bh1..bh3: placement splits the chain in three, and the two
  links between the parts become VXLANs over the underlay;

timing ``topo apply FILE --no-verify``, the no-op re-apply (it must say 0 changed) and
``topo destroy FILE``, each a full CLI run. It prints medians and the ratio three / one: the
cost of SSH to more hosts and of coordination (the project's target: within 1.5x for
apply and re-apply). Nothing is left on any host (checked), and the simulated hosts are
removed at the end, also after a failure.

Run as root, on a machine with a dockerd (``.ci/run`` starts one)::

    python3 bench/multihost.py                  # N = 1000, 1 repetition
    python3 bench/multihost.py --sizes 200,1000 --repeat 3 --json mh.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.run import topology_yaml  # noqa: E402  (the same chain as bench/run.py)
from tests.multihost.conftest import HOSTS, Sim, remove_leftovers  # noqa: E402

PHASES = ("apply", "re-apply", "destroy")


def timed(sim: Sim, *args: str) -> tuple[float, dict]:
    """Seconds a full ``topo`` CLI run takes in the controller namespace, and its JSON."""
    start = time.monotonic()
    proc = sim.topo(args[0], "--json", *args[1:], timeout=3600)
    return time.monotonic() - start, json.loads(proc.stdout or "{}")


def one_case(sim: Sim, lab_file: str, inventory: str, lab: str) -> dict:
    """apply, re-apply, destroy of ``lab_file`` on ``inventory``: {phase: seconds}."""
    got = {}
    got["apply"], _ = timed(sim, "apply", lab_file, "--no-verify", "--hosts", inventory)
    got["re-apply"], again = timed(sim, "apply", lab_file, "--no-verify", "--hosts", inventory)
    if again.get("changed") != 0:
        raise SystemExit(f"the re-apply of {lab} changed {again.get('changed')} objects; expected 0")
    got["destroy"], _ = timed(sim, "destroy", lab_file, "--hosts", inventory)
    for host in HOSTS:
        left = [ns for ns in sim.netns_on(host) if ns.startswith(f"topo-{lab}-")]
        if left:
            raise SystemExit(f"destroy left {len(left)} namespaces on {host}: {left[:5]}")
    return got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000", help="chain lengths N, comma-separated (default 1000)")
    ap.add_argument("--repeat", type=int, default=1, help="repetitions of each case, interleaved")
    ap.add_argument("--json", help="also write every sample to this file")
    opts = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/multihost.py: run as root (it makes namespaces and containers)", file=sys.stderr)
        return 3
    import docker
    client = docker.from_env(timeout=120)
    remove_leftovers(client)
    work = tempfile.mkdtemp(prefix="topo-mhbench-")
    sim = Sim(client, work)
    results = []
    try:
        sim.start()
        for n in [int(s) for s in opts.sizes.split(",")]:
            lab = f"mhb{n}"
            path = os.path.join(work, f"{lab}.yml")
            with open(path, "w") as f:
                f.write(topology_yaml(lab, "chain", n, 50))
            samples = {"one": [], "three": []}
            for _ in range(opts.repeat):
                for case in ("one", "three"):
                    print(f"chain N={n} on {case} host(s) ...", file=sys.stderr, flush=True)
                    samples[case].append(one_case(sim, path, sim.inventory[case], lab))
            med = {case: {p: statistics.median(s[p] for s in samples[case]) for p in PHASES}
                   for case in samples}
            results.append({"n": n, "samples": samples, "median": med})
            print(f"\nchain N={n}, medians of {opts.repeat} (seconds)")
            print(f"{'phase':<10} {'1 host':>8} {'3 hosts':>8} {'3 / 1':>6}")
            for p in PHASES:
                print(f"{p:<10} {med['one'][p]:8.1f} {med['three'][p]:8.1f} "
                      f"{med['three'][p] / med['one'][p]:6.2f}")
    finally:
        sim.close()
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
