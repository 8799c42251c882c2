"""topo: an Ansible-driven network topology provisioner.

A topology file is loaded (topo.load), validated (topo.model), expanded (topo.expand),
projected into an Ansible inventory (topo.inventory) and built by the topo.lab collection's
playbooks through ansible-runner (topo.runner). topo.cli is the command line.
"""

__version__ = "0.1.0"
