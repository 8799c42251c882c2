# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
name: netns
short_description: Run tasks inside a named network namespace, on this machine or on a build host
description:
  - Runs every command of a task inside a lab node that is a named network namespace
    (C(/run/netns/NAME)), with C(ip netns exec NAME /bin/sh -c ...). Modelled on
    community.docker's C(nsenter) connection.
  - On the machine that runs Ansible by default; the filesystem is the controller's, so
    files are copied locally.
  - When O(build_host) names a remote build host, through Ansible's own C(ssh) connection to
    that host (its address, user, port, key and SSH arguments, so its ControlPersist master
    connection is shared with the build host's own tasks, and pipelining applies); the
    command is C(ip netns exec NAME /bin/sh -c CMD) quoted as argv for the remote shell, and
    files are put and fetched on the build host's filesystem, which a netns node shares.
  - For a docker node on a remote build host (O(container) set), the command runs in the
    container with C(docker exec -i CONTAINER /bin/sh -c CMD) on that host instead (the
    image's programs and files, as community.docker's C(docker) connection gives a docker
    node on this machine), and files are put and fetched inside the container (C(cat) over
    that command's stdin and stdout).
  - The command runs as argv - the namespace name is never put into a shell string unquoted.
  - Needs root (C(setns) into another namespace), locally or as the remote user (or sudo
    there, O(build_host_become)).
author: topo developers
requirements: [iproute2 (ip netns exec), root; for a remote build host, OpenSSH's ssh; for a container, the docker CLI where it runs]
options:
  netns:
    description: Name of the namespace under C(/run/netns).
    type: str
    required: true
    vars:
      - name: topo_netns
      - name: ansible_netns
  container:
    description:
      - The node's container (a docker node), whose commands run with C(docker exec) rather
        than C(ip netns exec); topo's lab inventory sets it for docker nodes on a remote build
        host. Empty means a netns node.
    type: str
    default: ""
    vars:
      - name: topo_container
  executable:
    description: Shell that runs Ansible's command string inside the namespace.
    type: str
    default: /bin/sh
    vars:
      - name: ansible_netns_executable
  build_host:
    description:
      - The build host the node lives on, when it is not this machine (topo's lab inventory
        sets it for nodes on remote build hosts). Empty means this machine.
    type: str
    default: ""
    vars:
      - name: topo_build_host
  remote_addr:
    description: Address of the remote build host (only with O(build_host)).
    type: str
    vars:
      - name: ansible_host
      - name: ansible_ssh_host
  remote_user:
    description: User on the remote build host (only with O(build_host)); root.
    type: str
    vars:
      - name: ansible_user
      - name: ansible_ssh_user
  port:
    description: SSH port of the remote build host (only with O(build_host)).
    type: int
    vars:
      - name: ansible_port
      - name: ansible_ssh_port
  private_key_file:
    description: SSH key for the remote build host (only with O(build_host)).
    type: path
    vars:
      - name: ansible_private_key_file
      - name: ansible_ssh_private_key_file
  ssh_common_args:
    description: Extra arguments for every ssh call to the remote build host (only with O(build_host)).
    type: str
    vars:
      - name: ansible_ssh_common_args
  ssh_args:
    description: Replaces Ansible's default ssh arguments (ControlMaster, ControlPersist) when set.
    type: str
    vars:
      - name: ansible_ssh_args
  build_host_become:
    description:
      - The remote build host is reached as an ordinary user with C(ansible_become) (only
        with O(build_host)); the command runs behind C(sudo -n -u USER --) there, before
        C(ip netns exec) (passwordless sudo needed). topo's inventory sets it from the build
        host's C(ansible_become).
    type: bool
    default: false
    vars:
      - name: topo_build_host_become
  build_host_become_user:
    description: The user sudo makes the command run as (only with O(build_host_become)).
    type: str
    default: root
    vars:
      - name: topo_build_host_become_user
"""

EXAMPLES = r"""
# inventory host_vars of a node on this machine:
#   ansible_connection: topo.lab.netns
#   topo_netns: topo-demo-h1
# a node on a remote build host (topo writes these from the build-host inventory):
#   topo_build_host: host1
#   ansible_host: 192.0.2.11
#   ansible_user: root
# a docker node on a remote build host: the same, and
#   topo_container: topo-demo-d1
# then: ansible -i inventory h1 -m command -a 'ip -br addr'
"""

import os
import shlex
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.plugins.loader import connection_loader
from ansible.utils.display import Display

display = Display()

#: Options of this plugin passed to the ssh connection under the same name.
SSH_OPTIONS = ("remote_user", "port", "private_key_file", "ssh_common_args", "ssh_args")


class Connection(ConnectionBase):
    """Connection whose commands run inside a named network namespace, on this machine or
    (option ``build_host``) on a remote build host through Ansible's ssh connection."""

    transport = "topo.lab.netns"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super(Connection, self).__init__(*args, **kwargs)
        self._ssh = None

    def _remote(self):
        return bool(self.get_option("build_host"))

    def _connect(self):
        if not self._connected:
            ns = self.get_option("netns")
            if self._remote():
                self._ssh = self._ssh_connection()
                self._ssh._connect()
            elif not self.get_option("container") and not os.path.exists(os.path.join("/run/netns", ns)):
                raise AnsibleConnectionFailure(
                    "node namespace %s does not exist; is the lab applied? (topo apply FILE)" % ns)
            display.vvv("ESTABLISH NETNS CONNECTION TO %s%s" % (
                ns, " ON " + self.get_option("build_host") if self._remote() else ""),
                host=self._play_context.remote_addr)
            self._connected = True
        return self

    def _ssh_connection(self):
        """Ansible's ssh connection to the build host, with this node's SSH settings (which
        are the build host's); the rest (ControlPersist, pipelining) from Ansible's config."""
        ssh = connection_loader.get("ansible.builtin.ssh", self._play_context, "/dev/null")
        direct = {"host": self.get_option("remote_addr") or self.get_option("build_host"), "pipelining": True}
        for name in SSH_OPTIONS:
            value = self.get_option(name)
            if value not in (None, ""):
                direct[name] = value
        ssh.set_options(direct=direct)
        return ssh

    def _argv(self, cmd):
        return self._inside([self.get_option("executable"), "-c", cmd])

    def _inside(self, argv):
        """``argv`` run inside the node: in its container (``docker exec -i``), or its namespace."""
        if self.get_option("container"):
            return ["docker", "exec", "-i", self.get_option("container")] + argv
        return ["ip", "netns", "exec", self.get_option("netns")] + argv

    def exec_command(self, cmd, in_data=None, sudoable=True):
        """Run Ansible's command string with the shell inside the namespace (or container)."""
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        return self._run(self._argv(cmd), in_data)

    def _run(self, argv, in_data=None):
        """Run ``argv`` here or on the build host (behind sudo when it becomes); (rc, stdout, stderr)."""
        display.vvv("EXEC %s" % argv, host=self._play_context.remote_addr)
        if self._remote():
            if self.get_option("build_host_become"):
                from ansible_collections.topo.lab.plugins.module_utils._process import become_argv
                argv = become_argv({"ansible_become": True, "ansible_user": self.get_option("remote_user"),
                                    "ansible_become_user": self.get_option("build_host_become_user")}) + argv
            return self._ssh.exec_command(shlex.join(argv), in_data=in_data, sudoable=False)
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate(in_data)
        return proc.returncode, stdout, stderr

    def put_file(self, in_path, out_path):
        """Copy a file: a netns node shares its build host's filesystem; into a container, it
        is written by ``cat`` there from this command's stdin."""
        super(Connection, self).put_file(in_path, out_path)
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound("file or module does not exist: %s" % in_path)
        if self.get_option("container"):
            with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as f:
                rc, _, err = self._run(self._inside(["sh", "-c", 'cat > "$1"', "sh", out_path]), f.read())
            if rc != 0:
                raise AnsibleConnectionFailure("could not put %s into container %s: %s"
                                               % (out_path, self.get_option("container"), to_text(err).strip()))
            return None
        if self._remote():
            return self._ssh.put_file(in_path, out_path)
        shutil.copyfile(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        """Copy a file from the node (out of a container, read by ``cat`` there)."""
        super(Connection, self).fetch_file(in_path, out_path)
        if self.get_option("container"):
            rc, out, err = self._run(self._inside(["cat", in_path]))
            if rc != 0:
                raise AnsibleConnectionFailure("could not fetch %s from container %s: %s"
                                               % (in_path, self.get_option("container"), to_text(err).strip()))
            with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as f:
                f.write(out)
            return None
        if self._remote():
            return self._ssh.fetch_file(in_path, out_path)
        shutil.copyfile(in_path, out_path)

    def close(self):
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None
        self._connected = False
