#!/usr/bin/python3
"""One Mininet run for bench/vs_mininet.py: build, ping every pair, tear down; JSON on stdout.

Runs under the interpreter that has Debian's ``mininet`` package (``/usr/bin/python3``),
not topo's virtualenv. Linux bridges (``mininet.nodelib.LinuxBridge``, needs bridge-utils)
and no controller, so no Open vSwitch daemon is involved:

* ``star``: ``SingleSwitchTopo(N)``, N hosts on one switch;
* ``chain``: ``LinearTopo(N, 1)``, N switches in a line with one host each (every host in
  one subnet, 10.0.0.0/8, bridged end to end).

Times are measured inside this process around ``net.start()``, ``net.pingAll()`` and
``net.stop()`` (Python start-up and Mininet's import are reported apart, as ``import_s``).
The switches are Linux bridges in the ROOT namespace (Mininet's design); the caller checks
that the root namespace is clean afterwards and removes what this run left if it died.

usage: mininet_case.py star|chain N [--ping-timeout S]
"""

import argparse
import json
import sys
import time

T_START = time.monotonic()
from mininet.log import setLogLevel  # noqa: E402
from mininet.net import Mininet  # noqa: E402
from mininet.nodelib import LinuxBridge  # noqa: E402
from mininet.topo import LinearTopo, SingleSwitchTopo  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("shape", choices=("star", "chain"))
    p.add_argument("n", type=int)
    p.add_argument("--ping-timeout", default="1", help="pingAll's per-ping timeout (seconds)")
    opts = p.parse_args()
    import_s = time.monotonic() - T_START
    setLogLevel("error")
    topo = SingleSwitchTopo(opts.n) if opts.shape == "star" else LinearTopo(k=opts.n, n=1)
    result = {"shape": opts.shape, "n": opts.n, "import_s": round(import_s, 3)}
    t0 = time.monotonic()
    net = Mininet(topo=topo, switch=LinuxBridge, controller=None, autoSetMacs=False, waitConnected=False)
    try:
        net.start()
        result["build_s"] = round(time.monotonic() - t0, 3)
        t1 = time.monotonic()
        result["loss_pct"] = net.pingAll(timeout=opts.ping_timeout)
        result["ping_s"] = round(time.monotonic() - t1, 3)
        result["pairs"] = opts.n * (opts.n - 1)
    finally:
        t2 = time.monotonic()
        net.stop()
        result["teardown_s"] = round(time.monotonic() - t2, 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
