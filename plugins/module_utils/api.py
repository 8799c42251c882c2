# -*- coding: utf-8 -*-
"""The collection's one public interface for the topo front end (DESIGN.md 3, "one way in").

The front end (``topo/``: the CLI, its use cases, ``show``, ``doctor``, ``image``,
``labdir``) imports from this module only, never from the private ``_`` modules beside it,
so those can change shape without breaking the CLI. Everything here is also what the
modules themselves use: what ``topo show`` calls "up" is what ``apply`` compares, and the
lock the CLI takes is the lock the modules take.

Names are loaded on first use (PEP 562 ``__getattr__``): importing this module costs
nothing, and ``from ...api import fmt_bps`` does not import pyroute2 or the Docker SDK
(together about 0.3 s), which most commands never need.

Contents, by concern (each name, then the private module that implements it):
"""

from __future__ import absolute_import, division, print_function

import importlib

__metaclass__ = type

#: public name -> (private module, name there)
_EXPORTS = {
    # locks
    "flock_wait": ("_lock", "flock_wait"),
    # namespaces and links
    "Sockets": ("_netns", "Sockets"),
    "namespace_exists": ("_netns", "namespace_exists"),
    "list_namespaces": ("_netns", "list_namespaces"),
    "links_by_name": ("_netns", "links_by_name"),
    "ipv4_addresses": ("_netns", "ipv4_addresses"),
    "ip_addresses": ("_netns", "ip_addresses"),
    "MARKER": ("_netns", "MARKER"),
    "NetnsError": ("_netns", "NetnsError"),
    # kernel features
    "missing_features": ("_netns", "missing_features"),
    "KERNEL_FEATURES": ("_netns", "KERNEL_FEATURES"),
    "ALTERNATIVES": ("_netns", "ALTERNATIVES"),
    # impairments (topo's qdiscs): read back, compared, described as the impair module does
    "read_qdiscs": ("_qdisc", "read_roots"),
    "impairment_shape": ("_qdisc", "decode"),
    "impairment_differences": ("_qdisc", "differences"),
    "describe_impairment": ("_qdisc", "describe"),
    # Docker
    "docker_client": ("_docker", "client"),
    "DockerError": ("_docker", "DockerError"),
    "first_line": ("_docker", "first_line"),
    "LAB_LABEL": ("_docker", "LAB_LABEL"),
    # captures
    "summarize_pcap": ("_pcap", "summarize"),
    # units: one way to print a rate, in the modules and the front end
    "fmt_bps": ("_units", "fmt_bps"),
    "bps_unit": ("_units", "bps_unit"),
    # check types
    "CAST_TYPES": ("_vocabulary", "CAST_TYPES"),
    "STEP_TYPES": ("_vocabulary", "STEP_TYPES"),
    # names of labs, nodes and bridges
    "NAME_PATTERN": ("_vocabulary", "NAME_PATTERN"),
    # what a ping target's result entry says (topo.lab.ping writes it, topo.results reads it)
    "ping_entry": ("_vocabulary", "ping_entry"),
    # programs inside nodes, and which labs own what
    "node_argv": ("_frontend", "node_argv"),
    "ssh_argv": ("_process", "ssh_argv"),
    "become_argv": ("_process", "become_argv"),
    "capture": ("_frontend", "capture"),
    "labs_in_kernel": ("_frontend", "labs_in_kernel"),
    "lab_namespaces": ("_frontend", "lab_namespaces"),
    # destroy on this machine without ansible-playbook (topo.lab.lab's state absent)
    "remove_lab": ("_resources", "remove_lab"),
}

__doc__ += "\n" + "\n".join("* ``%s`` (``%s``)" % (name, mod) for name, (mod, _) in sorted(_EXPORTS.items()))
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    """Load a public name from its private module on first use (PEP 562)."""
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    value = getattr(importlib.import_module(__package__ + "." + module), attr)
    globals()[name] = value
    return value


def __dir__():
    return __all__
