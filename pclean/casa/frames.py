"""Frame conversions as a fresh process makes them.

CASA quirk: casacore's frame conversions depend on what the process converted before. Measured
twice: a grid defined in a process that had just simulated an MS was 1.7e-6 Hz off at 1.4 GHz
(a data channel on a channel edge then fell into the other channel); and after planning other
cubes of data observed at the same epoch, the LSRK channel spacing CASA's gridder sees at a
chunk's first channel differed in its last bits from a fresh process's (fuzz seed 1134 after
tests/parity/test_validation.py: a chunk gridded the spw edge differently, psf of channel 17
off by its peak). The state that carries over is cached per epoch and reused for later epochs
close to it (casacore's Nutation, Precession and Aberration recompute only beyond an interval
of 0.04-0.1 days). Serial tclean in a fresh process starts with nothing cached; converting
once at an epoch far from the data's makes the next conversion at the data's epoch start
afresh, as it does there.
"""
from __future__ import annotations

import os

from pclean.casa.env import tools

FAR_DAYS = 30.0  # beyond every casacore cache interval (at most 0.1 days)


def first_time_s(vis) -> float:
    """The first TIME (MJD seconds) of the first MS in ``vis``."""
    ms = vis[0] if isinstance(vis, (list, tuple)) else vis
    tb = tools().table()
    try:
        tb.open(os.path.join(str(ms), "OBSERVATION"))
        first = float(tb.getcell("TIME_RANGE", 0)[0]) if tb.nrows() else 0.0
        tb.close()
        if first <= 0:  # an OBSERVATION table without its time range: the first row's time
            tb.open(str(ms))
            first = float(tb.getcell("TIME", 0)) if tb.nrows() else 0.0
            tb.close()
        return first
    finally:
        tb.done()


def start_afresh(vis) -> None:
    """Convert a frequency and a direction at an epoch FAR_DAYS before the data's, through
    every frame a cube definition uses, so that the next conversion near the data's epoch
    computes its cached values anew."""
    me = tools().measures()
    try:
        days = first_time_s(vis) / 86400.0 - FAR_DAYS
        me.doframe(me.epoch("UTC", f"{days!r}d"))
        me.doframe(me.position("ITRF", "-1601185.4m", "-5041977.5m", "3554875.9m"))
        direction = me.direction("J2000", "0deg", "45deg")
        me.doframe(direction)
        for frame in ("LSRK", "BARY", "LSRD", "GEO", "GALACTO", "LGROUP", "CMB"):
            me.measure(me.frequency("TOPO", "1.4GHz"), frame)
        for ref in ("APP", "AZEL", "HADEC", "JTRUE", "B1950", "GALACTIC"):
            me.measure(direction, ref)
    finally:
        me.done()
