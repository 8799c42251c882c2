#!/usr/bin/env bash
# Install topo and everything it needs on Debian/Ubuntu, as root:
#   - apt: iproute2 (ip netns, tc), iputils-ping (ping checks), iperf3 (throughput checks),
#     tcpdump (captures), graphviz (topo graph's dot), python3-venv
#   - a virtualenv at $TOPO_VENV (default /opt/topo) with topo and the collection topo.lab,
#     Ansible (the newest release for this Python: ansible 12 on ansible-core 2.19 with
#     Python 3.11; 13 and 14 need Python >= 3.12), ansible-runner, pyroute2, netaddr,
#     pydantic, rich, graphviz, and the test tools (pytest, hypothesis)
#   - /usr/local/bin/topo -> $TOPO_VENV/bin/topo
# A virtualenv because Debian 12's system Python refuses pip installs (PEP 668). It is made
# from $TOPO_PYTHON, else from the distribution's /usr/bin/python3 when it is 3.11 or newer,
# else from PATH's python3. Debian and Ubuntu build theirs with profile-guided and link-time
# optimisation; an interpreter built from source without --enable-optimizations (as pyenv
# builds them by default) ran Ansible's import 20-30 % slower on the reference machine, and
# every topo command starts Python and Ansible. A virtualenv made from another interpreter
# than the chosen one is made again.
# Safe to re-run. Usage: sudo ./install.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${TOPO_VENV:-/opt/topo}

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (sudo ./install.sh): topo creates network namespaces" >&2
  exit 3
fi

step() { printf '\n== %s\n' "$*"; }

need_apt=()
command -v ip >/dev/null || need_apt+=(iproute2)
command -v ping >/dev/null || need_apt+=(iputils-ping)
command -v iperf3 >/dev/null || need_apt+=(iperf3)
command -v tcpdump >/dev/null || need_apt+=(tcpdump)
command -v dot >/dev/null || need_apt+=(graphviz)  # topo graph: SVG, PNG and HTML drawings
python=${TOPO_PYTHON:-}
if [ -z "$python" ]; then
  if /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=/usr/bin/python3
  else
    python=$(command -v python3)
  fi
fi
"$python" -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# pyvenv.cfg names the interpreter a virtualenv was made from ("executable = ...", Python >= 3.11)
made_from=$(sed -n 's/^executable = //p' "$venv/pyvenv.cfg" 2>/dev/null || true)
if [ -f "$venv/pyvenv.cfg" ] && [ "$made_from" != "$(realpath "$python")" ]; then
  step "virtualenv $venv was made from ${made_from:-another Python}; making it again from $python"
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  step "virtualenv $venv ($python)"
  "$python" -m venv "$venv"
fi
step "pip install topo into $venv (Ansible is a large download the first time)"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q "$here[test]"
ln -sf "$venv/bin/topo" /usr/local/bin/topo

ansible_version=$("$venv/bin/ansible" --version)  # whole, then the first line: a pipe to head breaks it
step "done: $("$venv/bin/topo" --version), ${ansible_version%%$'\n'*}"
echo "try:  topo apply examples/clusters.csv"
