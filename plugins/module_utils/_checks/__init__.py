# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the checks topo runs from the build host, one file per check type.

- ``specs.py``      what every check dict must look like: one Ansible argument spec per
                    type (unicast, broadcast, multicast, anycast, relay, iperf3, capture)
- ``cast.py``       topo.lab.cast's entry: validate, payloads, capture, the type's runner
- ``unicast.py`` ``broadcast.py`` ``multicast.py`` ``anycast.py`` ``relay.py``
                    one runner per cast type: the rounds it plays and how it is judged
- ``iperf3.py``     topo.lab.iperf's entry: the iperf3 sweep
- ``agents.py``     the in-node cast agent (module_utils/_castagent.py) driven from here
- ``payloads.py``   payloads made into bytes and hashed
- ``verdicts.py``   what arrived, judged: members, silent listeners, acks

Programs run in nodes through module_utils/_process.py; pcaps are read by _pcap.py.
"""
