"""Docker nodes on a remote build host, the parts that need no root, SSH or dockerd: the zip of
the Docker SDK topo brings (lookup topo.lab.python_zip) imports on a bare Python, the
container kind finds it beside the pyroute2 zip, and a container on a remote host is reached
with ``docker exec`` through that host (the node-process layer and the lab inventory).
(tests/multihost/test_docker_remote.py does it for real.)"""

import os
import shlex
import subprocess
import sys
import zipfile

from ansible_collections.topo.lab.plugins.lookup.python_zip import closure, make_zip
from ansible_collections.topo.lab.plugins.module_utils import _docker, _process
from topo.inventory import CONNECTION, node_connection_vars

REMOTE = {"name": "bh4", "ansible_host": "192.0.2.14", "ansible_user": "topo", "ansible_become": True,
          "ansible_ssh_private_key_file": "/k"}


def test_the_docker_closure_is_what_the_sdk_imports_and_no_more():
    names = {n.lower().replace("_", "-") for n, _, _ in closure(["docker"])}
    assert {"docker", "requests", "urllib3", "idna", "certifi", "charset-normalizer"} <= names
    assert not names & {"pywin32", "paramiko", "websocket-client", "pytest"}  # markers and extras left out


def test_the_zip_is_the_same_every_time_and_imports_on_a_bare_python(tmp_path):
    a = make_zip(["docker"], str(tmp_path / "a"))
    b = make_zip(["docker"], str(tmp_path / "b"))
    assert os.path.basename(a) == os.path.basename(b)
    assert open(a, "rb").read() == open(b, "rb").read()
    assert make_zip(["docker"], str(tmp_path / "a")) == a  # made once
    names = zipfile.ZipFile(a).namelist()
    assert "certifi/cacert.pem" in names and "docker/api/client.pyc" in names
    assert not [n for n in names if n.endswith(".so") or "__pycache__" in n]
    assert all(n + "c" in names for n in names if n.endswith(".py"))
    # -I -S: no site-packages, as on a build host without pip
    code = ("import sys; sys.path.append(sys.argv[1]); import docker, docker.errors, charset_normalizer.md as md; "
            "print(docker.__file__); print(md.__file__); print(docker.from_env.__name__)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, a], capture_output=True, text=True, check=True)
    docker_file, md_file, _ = out.stdout.split()
    assert docker_file.startswith(a + "/docker/") and md_file.startswith(a + "/charset_normalizer/md.py")


def test_the_container_kind_finds_the_sdk_beside_the_pyroute2_zip(tmp_path):
    pyroute2 = tmp_path / "pyroute2.zip"
    pyroute2.write_bytes(b"")
    assert _docker.brought_sdk([str(pyroute2), "/usr/lib/python311.zip"]) is None
    (tmp_path / _docker.SDK_ZIP).write_bytes(b"")
    assert _docker.brought_sdk(["/nowhere.zip", str(pyroute2)]) == str(tmp_path / "docker.zip")
    assert _docker.brought_sdk([str(tmp_path)]) is None  # a folder on the path is no zip


def test_a_container_on_a_remote_host_is_reached_with_docker_exec_there():
    place = {"node": "d1", "netns": "topo-x-d1", "container": "topo-x-d1", "ssh": REMOTE}
    argv = _process.exec_argv(place, ["python3", "-c", "print(1)"], interactive=True, docker="/usr/bin/docker")
    assert argv[0] == "ssh" and argv[-3:-1] == ["192.0.2.14", "--"]
    # behind sudo (become), the remote host's own docker, never the controller's path
    assert shlex.split(argv[-1]) == ["sudo", "-n", "-u", "root", "--", "docker", "exec", "-i", "topo-x-d1",
                                     "python3", "-c", "print(1)"]
    # a program beyond one master's share goes over a further master to that host (sshd's MaxSessions)
    further = _process.exec_argv(place, ["true"], master=2)
    assert any(a.startswith("ControlPath=") and a.endswith("/%C-2") for a in further), further
    local = dict(place, ssh=None)
    assert _process.exec_argv(local, ["true"], docker="/usr/bin/docker") == \
        ["/usr/bin/docker", "exec", "topo-x-d1", "true"]
    # tcpdump runs on that host in the container's named namespace, its pcap streamed back
    dump = _process.Tcpdump(place, "eth0", "/tmp/x.pcap")
    assert dump.remote
    assert shlex.split(_process.netns_argv(place, dump.argv_tail)[-1])[5:9] == \
        ["ip", "netns", "exec", "topo-x-d1"]


def test_the_inventory_reaches_a_remote_docker_node_through_its_host():
    hosts = {"bh4": {"ansible_host": "192.0.2.14", "ansible_user": "root", "ansible_python_interpreter": "/opt/py3",
                     "topo_pythonpath": "/var/lib/topo/pyroute2.zip"}}
    node = {"kind": "docker", "host": "bh4", "netns": "topo-x-d1"}
    got = node_connection_vars(node, hosts)
    assert got["ansible_connection"] == CONNECTION == "topo.lab.netns"
    assert got["topo_container"] == "topo-x-d1" and got["topo_build_host"] == "bh4"
    assert got["ansible_host"] == "192.0.2.14" and got["ansible_user"] == "root"
    assert got["ansible_python_interpreter"] == "/usr/bin/python3"  # the image's, not the host's
    local = {"here": {"ansible_connection": "local"}}
    assert node_connection_vars(dict(node, host="here"), local) == {}
