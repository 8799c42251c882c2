# -*- coding: utf-8 -*-
"""Units topo prints, one way everywhere: the checks' tables, report.md and the plots.

Rates are bits per second with SI prefixes (1 kbit/s = 1000 bit/s, as iperf3 reports them).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

#: (factor, unit) from the largest down; a rate is shown in the first unit it reaches.
BPS_UNITS = ((1e12, "Tbit/s"), (1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s"), (1.0, "bit/s"))


def bps_unit(bps):
    """``(factor, unit)`` for showing ``bps`` (bits/s): the largest unit it reaches,
    ``(1e9, "Gbit/s")`` for 18.9e9. Zero, negative and None give ``(1.0, "bit/s")``."""
    for factor, unit in BPS_UNITS:
        if bps is not None and abs(bps) >= factor:
            return factor, unit
    return BPS_UNITS[-1]


def fmt_bps(bps):
    """``bps`` bits per second as text with three significant digits: ``940 Mbit/s``,
    ``18.9 Gbit/s``, ``1.25 kbit/s``; ``-`` for None."""
    if bps is None:
        return "-"
    factor, unit = bps_unit(bps)
    value = bps / factor
    return ("%.0f %s" if abs(value) >= 100 else "%.3g %s") % (value, unit)
