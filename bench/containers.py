#!/usr/bin/env python3
"""Benchmark docker nodes: topo's apply, re-apply and destroy of N containers on one bridge,
against the physical limit measured in the same run - the same containers created, started
and removed directly with the Docker SDK.

For each N (default 16 and 50):

1. **limit, serial**: create + start N containers one at a time (the settings topo uses:
   topo-node image, ``network_mode: none``, NET_ADMIN and NET_RAW, init), then remove them
   one at a time;
2. **limit, parallel**: the same, 8 at a time (topo's ``PARALLEL``);
3. **topo**: a lab of N docker nodes on one bridge, ``verify: []``:
   ``topo apply --no-verify`` (containers, namespaces named, bridge, veths, addresses),
   the no-op re-apply (must report 0 changed) and ``topo destroy``, each a whole CLI run.

Ratios are topo's time over the parallel limit's (create + start for apply, remove for
destroy). topo does more than the limit (namespaces, bridge, veths, addresses, a Python
and Ansible start per command), so the ratio says what that costs.

Run as root with a dockerd and the topo-node image (``topo image build --offline``):

    python3 bench/containers.py [--sizes 16,50] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

IMAGE = "topo-node:latest"
PARALLEL = 8


def limit(client, n: int, parallel: int, prefix: str) -> tuple[float, float]:
    """Seconds to create+start, then to remove, ``n`` containers ``parallel`` at a time."""
    def make(i):
        c = client.containers.create(IMAGE, name=f"{prefix}{i}", network_mode="none", init=True,
                                     cap_add=["NET_ADMIN", "NET_RAW"], labels={"bench": prefix}, detach=True)
        c.start()
        return c

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        t0 = time.monotonic()
        made = list(pool.map(make, range(n)))
        t1 = time.monotonic()
        list(pool.map(lambda c: c.remove(force=True), made))
        t2 = time.monotonic()
    return t1 - t0, t2 - t1


def lab_yaml(lab: str, n: int) -> str:
    nodes = "".join(f"  d{i}: {{}}\n" for i in range(1, n + 1))
    links = "".join(f"  - [d{i}, lan]\n" for i in range(1, n + 1))
    return f"name: {lab}\ndefaults: {{kind: docker}}\nbridges:\n  lan: {{}}\nnodes:\n{nodes}links:\n{links}verify: []\n"


def topo(args: list[str], env: dict) -> tuple[float, dict]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "topo", *args, "--json"], capture_output=True, text=True, env=env)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"topo {' '.join(args)} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return seconds, json.loads(proc.stdout)


def bench(client, n: int, tmp: str) -> dict:
    serial = limit(client, n, 1, f"bench-s{n}-")
    par = limit(client, n, PARALLEL, f"bench-p{n}-")
    lab = f"benchdk{n}"
    path = os.path.join(tmp, f"{lab}.yml")
    with open(path, "w") as f:
        f.write(lab_yaml(lab, n))
    env = dict(os.environ, TOPO_HOME=os.path.join(tmp, "home"))
    try:
        apply_s, first = topo(["apply", path, "--no-verify"], env)
        reapply_s, again = topo(["apply", path, "--no-verify"], env)
        if again["changed"] != 0:
            raise SystemExit(f"re-apply of {lab} changed {again['changed']}: {again['changes'][:5]}")
        destroy_s, gone = topo(["destroy", path], env)
    finally:
        subprocess.run([sys.executable, "-m", "topo", "destroy", "--lab", lab], capture_output=True, env=env)
    return {"n": n, "limit_serial": {"create_start": serial[0], "remove": serial[1]},
            "limit_parallel": {"create_start": par[0], "remove": par[1]},
            "topo": {"apply": apply_s, "apply_changed": first["changed"], "reapply": reapply_s, "destroy": destroy_s,
                     "containers_removed": len(gone["labs"][0]["containers"])}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="16,50", help="container counts N (default 16,50)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    opts = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/containers.py: run as root", file=sys.stderr)
        return 3
    import docker
    client = docker.from_env(timeout=300, max_pool_size=2 * PARALLEL)
    client.images.get(IMAGE)
    results = []
    with tempfile.TemporaryDirectory(prefix="topo-bench-docker-") as tmp:
        for n in [int(x) for x in opts.sizes.split(",")]:
            results.append(bench(client, n, tmp))
    print(f"{'N':>4} | {'SDK 1-by-1 start':>16} | {'SDK 8-at-a-time start':>21} | {'topo apply':>16} | "
          f"{'topo re-apply':>13} | {'SDK 8 remove':>12} | {'topo destroy':>16}")
    for r in results:
        lim, t = r["limit_parallel"], r["topo"]
        print(f"{r['n']:>4} | {r['limit_serial']['create_start']:>14.2f} s | {lim['create_start']:>19.2f} s | "
              f"{t['apply']:>6.2f} s (x{t['apply'] / lim['create_start']:.1f}) | {t['reapply']:>11.2f} s | "
              f"{lim['remove']:>10.2f} s | {t['destroy']:>6.2f} s (x{t['destroy'] / lim['remove']:.1f})")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"when": time.strftime("%Y-%m-%d %H:%M"), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
