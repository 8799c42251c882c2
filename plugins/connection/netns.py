# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
name: netns
short_description: Run tasks inside a named network namespace on the controller
description:
  - Runs every command of a task inside a lab node that is a named network namespace
    (C(/run/netns/NAME)) on the machine that runs Ansible, with
    C(ip netns exec NAME /bin/sh -c ...). The filesystem is the controller's, so files
    are copied locally. Modelled on community.docker's C(nsenter) connection.
  - The command runs as argv - the namespace name is never put into a shell string.
  - Needs root (C(setns) into another namespace).
author: topo developers
requirements: [iproute2 (ip netns exec), root]
options:
  netns:
    description: Name of the namespace under C(/run/netns).
    type: str
    required: true
    vars:
      - name: topo_netns
      - name: ansible_netns
  executable:
    description: Shell that runs Ansible's command string inside the namespace.
    type: str
    default: /bin/sh
    vars:
      - name: ansible_netns_executable
"""

EXAMPLES = r"""
# inventory host_vars of a node:
#   ansible_connection: topo.lab.netns
#   topo_netns: topo-demo-h1
# then: ansible -i inventory h1 -m command -a 'ip -br addr'
"""

import os
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()


class Connection(ConnectionBase):
    """Local connection whose commands run inside a named network namespace."""

    transport = "topo.lab.netns"
    has_pipelining = True

    def _connect(self):
        if not self._connected:
            ns = self.get_option("netns")
            if not os.path.exists(os.path.join("/run/netns", ns)):
                raise AnsibleConnectionFailure(
                    "node namespace %s does not exist; is the lab applied? (topo apply FILE)" % ns)
            display.vvv("ESTABLISH NETNS CONNECTION TO %s" % ns, host=self._play_context.remote_addr)
            self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=True):
        """Run Ansible's command string with the shell inside the namespace."""
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        argv = ["ip", "netns", "exec", self.get_option("netns"), self.get_option("executable"),
                "-c", cmd]
        display.vvv("EXEC %s" % argv, host=self._play_context.remote_addr)
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate(in_data)
        return proc.returncode, stdout, stderr

    def put_file(self, in_path, out_path):
        """Copy a file: a netns node shares the controller's filesystem."""
        super(Connection, self).put_file(in_path, out_path)
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound("file or module does not exist: %s" % in_path)
        shutil.copyfile(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        shutil.copyfile(in_path, out_path)

    def close(self):
        self._connected = False
