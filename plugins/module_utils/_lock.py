# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: taking a lock file with a timeout (:func:`flock_wait`), which the modules' lab
lock (:func:`~._netns.lab_lock`) and the front end's lab-directory lock share; in a module of
its own so the front end takes its lock without importing pyroute2 (about 0.3 s of every
``topo destroy``)."""

from __future__ import absolute_import, division, print_function

import errno
import fcntl
import time

__metaclass__ = type


def flock_wait(fd, timeout, on_busy=None):
    """Take an exclusive flock on ``fd``, retrying every 0.1 s for up to ``timeout`` seconds.

    ``on_busy()`` is called on each busy try (it may raise). Returns True when the lock is
    held, False when the time ran out. The lock lasts until ``fd`` is closed.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
        if on_busy is not None:
            on_busy()
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
