# -*- coding: utf-8 -*-
"""Vocabulary shared by the modules and the front end (via ``api``), in a module light
enough for the front end to import at start-up: the check types topo runs and the pattern
of lab, node and bridge names."""

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
