# -*- coding: utf-8 -*-
"""The check types topo runs, one list for the modules and the front end (via ``api``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

#: Checks whose traffic is datagrams (or a TCP stream) between node sockets, run by
#: topo.lab.cast from the build host (role verify_cast).
CAST_TYPES = ("unicast", "broadcast", "multicast", "anycast", "relay")
#: Checks run from the build host one item at a time: the casts and iperf3 (topo.lab.iperf).
STEP_TYPES = CAST_TYPES + ("iperf3",)
