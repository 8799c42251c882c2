# -*- coding: utf-8 -*-
"""What only the front end asks of the build host: run a program in a node, capture on an
interface, find the labs that own namespaces. Reached through ``api`` only."""

from __future__ import absolute_import, division, print_function

import signal
import subprocess

from ansible_collections.topo.lab.plugins.module_utils._netns import Sockets
from ansible_collections.topo.lab.plugins.module_utils.resources import netns as netns_kind

__metaclass__ = type


def labs_in_kernel():
    """Names of labs that own at least one namespace, by the marker on its ``lo``
    (``topo:<lab>:<node>``), sorted. The scan is the netns kind's
    (:func:`~.resources.netns.marked_namespaces`)."""
    with Sockets() as socks:
        return netns_kind.labs_in_kernel(socks)


def node_argv(netns, kind, argv, interactive=False, tty=False):
    """The argv that runs ``argv`` inside a node: ``ip netns exec NETNS ...`` for a netns
    node; ``docker exec [-i] [-t] NETNS ...`` for a docker node (its programs, files and
    hostname; the container is named like the namespace). No shell is involved."""
    if kind == "docker":
        return ["docker", "exec"] + (["-i"] if interactive else []) + (["-t"] if tty else []) + [netns] + list(argv)
    return ["ip", "netns", "exec", netns] + list(argv)


def capture(netns, ifname, path, count, duration, bpf=None):
    """Run tcpdump on ``ifname`` inside namespace ``netns`` into the pcap ``path`` until
    ``count`` packets were seen or ``duration`` seconds passed (or Ctrl-C); returns
    tcpdump's stderr. The pcap is flushed (SIGINT) before this returns."""
    argv = node_argv(netns, "netns", ["tcpdump", "-i", ifname, "-nn", "-U", "-w", path, "-c", str(count)]
                     + ([bpf] if bpf else []))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        proc.wait(timeout=duration)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        proc.send_signal(signal.SIGINT)  # tcpdump flushes the pcap on SIGINT
        proc.wait(timeout=10)
    return proc.stderr.read() if proc.stderr else ""
