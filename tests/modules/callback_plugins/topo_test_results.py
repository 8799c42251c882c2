# -*- coding: utf-8 -*-
"""Test-only Ansible callback: writes every task result of a run to a JSON file.

Enabled by tests/modules/conftest.py through ANSIBLE_CALLBACK_PLUGINS and
ANSIBLE_CALLBACKS_ENABLED; the file is named by the TOPO_TEST_RESULTS variable.
Results are keyed by task name (the conftest names tasks step0, step1, ...).
"""
from __future__ import annotations

DOCUMENTATION = r"""
name: topo_test_results
type: aggregate
short_description: Dump task results to the JSON file named by TOPO_TEST_RESULTS
description: For topo's module tests only.
requirements: [TOPO_TEST_RESULTS set]
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "topo_test_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get("TOPO_TEST_RESULTS")
        self._results = {}

    def _record(self, result, status):
        data = getattr(result, "result", None)
        if data is None:
            data = result._result
        data = dict(data)
        data["_status"] = status
        # the failed flag is not always kept in the callback's copy of the result
        data["failed"] = status in ("failed", "unreachable")
        self._results[result._task.get_name()] = data
        if self._path:
            with open(self._path, "w") as f:
                json.dump(self._results, f, default=str)

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")
