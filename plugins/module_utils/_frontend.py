# -*- coding: utf-8 -*-
"""What only the front end asks of the build host: run a program in a node, capture on an
interface, find the labs that own namespaces. Reached through ``api`` only."""

from __future__ import absolute_import, division, print_function

from ansible_collections.topo.lab.plugins.module_utils import _process
from ansible_collections.topo.lab.plugins.module_utils._resources import netns as netns_kind

__metaclass__ = type


def labs_in_kernel():
    """Names of labs that own at least one namespace, by the marker on its ``lo``
    (``topo:<lab>:<node>``), sorted. The scan is the netns kind's
    (:func:`~._resources.netns.marked_namespaces`)."""
    return netns_kind.labs_in_kernel()


def lab_namespaces():
    """``{namespace: lab}`` of every namespace whose ``lo`` carries a lab marker (the netns
    kind's scan)."""
    return {name: lab for name, (lab, _) in netns_kind.marked_namespaces(netns_kind.read_marker).items()}


def node_argv(netns, kind, argv, interactive=False, tty=False):
    """The argv that runs ``argv`` inside a node: ``ip netns exec NETNS ...`` for a netns
    node; ``docker exec [-i] [-t] NETNS ...`` for a docker node (its programs, files and
    hostname; the container is named like the namespace). No shell is involved.
    (:func:`_process.exec_argv`, the one home for programs in nodes.)"""
    return _process.exec_argv(_process.place_of(netns, kind), argv, interactive, tty)


def capture(netns, ifname, path, count, duration, bpf=None, ssh=None):
    """Run tcpdump on ``ifname`` inside namespace ``netns`` into the pcap ``path`` until
    ``count`` packets were seen or ``duration`` seconds passed (or Ctrl-C); returns
    tcpdump's stderr (or why it could not capture; no pcap then). The pcap is flushed
    (SIGINT) before this returns (:class:`_process.Tcpdump`). ``ssh``: the namespace is on
    this remote build host (its name and inventory SSH settings, as a check's ``ssh``):
    tcpdump runs there and the pcap streams back to ``path`` here."""
    place = dict(_process.place_of(netns), ssh=ssh)
    dump = _process.Tcpdump(place, ifname, path, bpf, count=count,
                            tcpdump="tcpdump" if ssh else _process.which("tcpdump") or "tcpdump")
    try:
        dump.start()
        dump.wait(duration)
    except _process.ProcessError as exc:
        return str(exc)
    except KeyboardInterrupt:
        pass
    finally:
        dump.stop()
    return dump.err.decode("utf-8", "replace")
