# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""The action of the module topo.lab.container: on a local build host it runs in a fork of Ansible's
worker instead of through AnsiballZ (see plugins/plugin_utils/module_fork.py)."""
from __future__ import annotations

from ansible_collections.topo.lab.plugins.plugin_utils.module_fork import ActionModule

__all__ = ["ActionModule"]
