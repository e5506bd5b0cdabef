"""Where CASA's frequency interpolation makes a chunk's gridding depend on its sub-cube's
anchor (``cubewide.InterpAnchors``): the image channels near each selected spw's far edge."""
from __future__ import annotations

import os

import numpy as np

from pclean import casa
from pclean.params.spectral import CubeGrid


# frames whose channel frequencies drift against each other: bound on the Doppler between them
_MAX_DOPPLER = 2e-4  # 60 km/s: Earth's orbit and rotation, the Sun's motion to the LSR
_FREQ_TYPES = ("REST", "LSRK", "LSRD", "BARY", "GEO", "TOPO", "GALACTO", "LGROUP", "CMB")


def interp_anchors(selpars: dict, grid: CubeGrid) -> list[list]:
    """``[[channel, side], ...]`` (see ``InterpAnchors``), from every selected spw's channels."""
    freqs = np.asarray(grid.freqs_hz, dtype=float)
    spacing = grid.width
    if spacing <= 0:
        return []
    image_increasing = freqs[1] > freqs[0]
    out = set()
    ct = casa.tools()
    for sel in selpars.values():
        msname = sel["msname"]
        ms = ct.ms()
        try:
            idx = ms.msseltoindex(vis=msname, spw=sel.get("spw") or "*")
        finally:
            ms.done()
        tb = ct.table()
        tb.open(os.path.join(str(msname), "SPECTRAL_WINDOW"))
        try:
            for spw, start, end, step in np.atleast_2d(idx["channel"]):
                chan = np.asarray(tb.getcell("CHAN_FREQ", int(spw)), dtype=float)
                ref = int(tb.getcell("MEAS_FREQ_REF", int(spw)))
                f = chan[int(start):int(end) + 1:max(1, int(step))]
                if len(f) < 2 or f[1] == f[0]:
                    continue  # a 1-channel vb is gridded without interpolation
                data_frame = _FREQ_TYPES[ref] if 0 <= ref < len(_FREQ_TYPES) else ""
                # in the gridder's frame (LSRK) the ratio may be whole where it is not in the
                # image's (e.g. a BARY image of LSRK data: a constant Doppler between them)
                tol = 1e-6 if data_frame == grid.frame else 1e-6 + 2 * _MAX_DOPPLER
                ratio = spacing / abs(f[1] - f[0])
                if round(ratio) < 2 or abs(ratio - round(ratio)) > tol * ratio:
                    # the points do not fall on the data channels, or an image channel is one
                    # data channel (CASA interpolates onto points only for wider ones: the
                    # default grid keeps every chunk's own sub-cube)
                    continue
                edge = f[-1]  # the far edge: the anchor is at the data's first channel's side
                margin = spacing * 1.5 + (0.0 if data_frame == grid.frame
                                          else _MAX_DOPPLER * abs(edge))
                # the anchor: the highest image frequency for decreasing data, else the lowest
                to_high = f[1] < f[0]
                side = "end" if to_high != (not image_increasing) else "start"
                for c in np.flatnonzero(np.abs(freqs - edge) <= margin):
                    out.add((int(c), side))
        finally:
            tb.close()
            tb.done()
    return [list(x) for x in sorted(out)]
