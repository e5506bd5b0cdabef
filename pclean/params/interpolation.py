"""Where CASA's frequency interpolation makes a chunk's gridding depend on the extent of its
gridded sub-cube: the image channels near each selected spw's far edge
(``reach.InterpAnchors``) and the spws whose lowest channels a chunk's prediction reaches
(``reach.LowEdges``)."""
from __future__ import annotations

import os

import numpy as np

from pclean import casa
from pclean.casa import frames
from pclean.params.spectral import CubeGrid

# frames whose channel frequencies drift against each other: bound on the Doppler between them
_MAX_DOPPLER = 2e-4  # 60 km/s: Earth's orbit and rotation, the Sun's motion to the LSR
_FREQ_TYPES = ("REST", "LSRK", "LSRD", "BARY", "GEO", "TOPO", "GALACTO", "LGROUP", "CMB")
# data frames whose conversion to LSRK is the same at every time of an observation (the
# gridder converts a TOPO or GEO vb at its own time)
_FIXED_FRAMES = ("LSRK", "LSRD", "BARY", "GALACTO", "LGROUP", "CMB")


def _spw_channels(selpars: dict, with_sel: bool = False):
    """``(data frame, selected channel frequencies)`` of every selected spw of every MS
    (``(selection, data frame, frequencies)`` with ``with_sel``)."""
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
            rows = [(int(spw), int(start), int(end), max(1, int(step)))
                    for spw, start, end, step in np.atleast_2d(idx["channel"])]
            spws = [(np.asarray(tb.getcell("CHAN_FREQ", spw), dtype=float),
                     int(tb.getcell("MEAS_FREQ_REF", spw)), start, end, step)
                    for spw, start, end, step in rows]
        finally:
            tb.close()
            tb.done()
        for chan, ref, start, end, step in spws:
            data_frame = _FREQ_TYPES[ref] if 0 <= ref < len(_FREQ_TYPES) else ""
            f = chan[start:end + 1:step]
            yield (sel, data_frame, f) if with_sel else (data_frame, f)


def _observatory(me, msname: str):
    """The MS's observatory position (its telescope's, else its antennas' mean)."""
    tb = casa.tools().table()
    try:
        tb.open(os.path.join(msname, "OBSERVATION"))
        name = str(tb.getcell("TELESCOPE_NAME", 0)) if tb.nrows() else ""
        tb.close()
        if name and name.upper() in [n.upper() for n in me.obslist()]:
            return me.observatory(name)
        tb.open(os.path.join(msname, "ANTENNA"))
        x, y, z = np.asarray(tb.getcol("POSITION"), dtype=float).mean(axis=1)
        tb.close()
        return me.position("ITRF", f"{x!r}m", f"{y!r}m", f"{z!r}m")
    finally:
        tb.done()


def _times_s(msname: str) -> np.ndarray:
    """Times (MJD seconds) across the MS's observations, at most 15 minutes apart."""
    tb = casa.tools().table()
    try:
        tb.open(os.path.join(msname, "OBSERVATION"))
        ranges = np.asarray(tb.getcol("TIME_RANGE"), dtype=float) if tb.nrows() else np.zeros((2, 0))
        tb.close()
        if not ranges.size or ranges.min() <= 0:
            tb.open(msname)
            t = np.asarray(tb.getcol("TIME"), dtype=float)
            tb.close()
            ranges = np.array([[t.min()], [t.max()]]) if t.size else np.zeros((2, 1))
    finally:
        tb.done()
    lo, hi = float(ranges.min()), float(ranges.max())
    return np.linspace(lo, hi, int(min(200, np.ceil((hi - lo) / 900.0) + 1)) + 1)


# bound on what the sampled conversion leaves out: the Doppler between 15-minute samples (Earth
# rotation, 0.46 km/s: 1e-7) and the field's direction against the image's (arcminutes: 3e-8)
_SAMPLING_SLACK = 3e-7


def doppler_range(csys_record: dict, msname: str, frame: str) -> tuple[float, float]:
    """The range of ``f_LSRK / f`` for data of ``frame`` in the MS, over its observation, at
    the image's direction: what CASA's gridder multiplies the data's frequencies by, vb by vb,
    to match them with the image's LSRK channels (a fixed frame's is the same at every time)."""
    if frame in ("LSRK", "REST", ""):
        return 1.0, 1.0
    ct = casa.tools()
    cs, me = ct.coordsys(), ct.measures()
    cs.fromrecord(csys_record)
    try:
        me.doframe(cs.toworld(cs.referencepixel()["numeric"], "m")["measure"]["direction"])
        me.doframe(_observatory(me, msname))
        factors = []
        for t in (_times_s(msname)[:1] if frame in _FIXED_FRAMES else _times_s(msname)):
            me.doframe(me.epoch("UTC", f"{t / 86400.0!r}d"))
            out = me.measure(me.frequency(frame, "1GHz"), "LSRK")
            factors.append(float(out["m0"]["value"]) / 1e9)
    finally:
        cs.done()
        me.done()
    slack = 0.0 if frame in _FIXED_FRAMES else _SAMPLING_SLACK
    return min(factors) * (1 - slack), max(factors) * (1 + slack)


def image_lsrk(grid: CubeGrid) -> np.ndarray:
    """The image's channel frequencies in LSRK, as the gridder converts them (to 1e-12)."""
    cs = casa.tools().coordsys()
    cs.fromrecord(grid.csys)
    try:
        spec_world = int(cs.findcoordinate("spectral")["world"][0])
        spec_pixel = int(cs.findcoordinate("spectral")["pixel"][0])
        if cs.referencecode("spectral")[0] not in ("REST", "Undefined"):
            cs.setconversiontype(spectral="LSRK")
        pixels = np.tile(np.asarray(cs.referencepixel()["numeric"], float), (grid.nchan, 1)).T
        pixels[spec_pixel, :] = np.arange(grid.nchan)
        return np.asarray(cs.toworldmany(pixels)["numeric"][spec_world], dtype=float)
    finally:
        cs.done()


def spw_pixels(selpars: dict, grid: CubeGrid):
    """``[(f, pixels at the lowest Doppler, at the highest), ...]`` for every selected spw:
    its channel frequencies and where they fall on the image's channels in LSRK."""
    lsrk = image_lsrk(grid)
    out = []
    converted = False
    for sel, data_frame, f in _spw_channels(selpars, with_sel=True):
        k_lo, k_hi = doppler_range(grid.csys, str(sel["msname"]), data_frame)
        converted = converted or data_frame not in ("LSRK", "REST", "")
        out.append((f, _pixels(lsrk, f * k_lo), _pixels(lsrk, f * k_hi)))
    if converted:  # these conversions must not carry over into later grid definitions
        frames.start_afresh([sel["msname"] for sel in selpars.values()])
    return out


def interp_anchors(selpars: dict, grid: CubeGrid) -> list[list]:
    """``[[channel, side], ...]`` (see ``InterpAnchors``), from every selected spw's channels."""
    freqs = np.asarray(grid.freqs_hz, dtype=float)
    spacing = grid.width
    if spacing <= 0:
        return []
    image_increasing = freqs[1] > freqs[0]
    out = set()
    pixels = spw_pixels(selpars, grid)
    for (data_frame, f), (_, p_lo, p_hi) in zip(_spw_channels(selpars), pixels):
        if len(f) < 2 or f[1] == f[0]:
            continue  # a 1-channel vb is gridded without interpolation
        # in the gridder's frame (LSRK) the ratio may be whole where it is not in the
        # image's (e.g. a BARY image of LSRK data: a constant Doppler between them)
        tol = 1e-6 if data_frame == grid.frame else 1e-6 + 2 * _MAX_DOPPLER
        ratio = spacing / abs(f[1] - f[0])
        whole = round(ratio)
        if whole < 1 or abs(ratio - whole) > tol * ratio:
            continue  # the points do not fall on the data channels
        if whole == 1 and (data_frame == grid.frame or data_frame not in _FIXED_FRAMES):
            continue
        # An image channel of ONE data channel counts where the data's frame is not the
        # image's but both conversions to LSRK are the same at every time: CASA takes the
        # points path when ``|imageFreq[1]-imageFreq[0]| / |visFreq[1]-visFreq[0]|`` (in
        # LSRK, the vb's first two data channels) exceeds 1.0 by a few ulps, which the two
        # conversions give, and the points are then the image channels added up from the
        # anchor. Measured (fuzz seed 2181: a TOPO cube of BARY data, width -1 from data
        # channel 13, the top of the spw): 1-channel chunk 0 gridding channels 0-2 gave
        # channel 0 a sumwt of 0.0191 where serial's is 0 (psf 1.0 of peak off); gridded to
        # the cube's end, equal. (Data converted vb by vb, TOPO or GEO, meet the image's
        # channels at one time at most; a cube in the data's frame has the ratio 1.0 exactly.)
        # The anchor: the highest image frequency for decreasing data, else the lowest.
        side = "end" if (f[1] < f[0]) != (not image_increasing) else "start"
        # the far edge (the anchor is at the data's first channel's side), where it falls on
        # the image's channels over the observation, and 1.5 channels either side
        lo, hi = sorted((float(p_lo[-1]), float(p_hi[-1])))
        first, last = max(0, int(np.ceil(lo - 1.5))), min(len(freqs) - 1, int(np.floor(hi + 1.5)))
        out.update((c, side) for c in range(first, last + 1))
    return [list(x) for x in sorted(out)]


def _pixels(freqs_hz: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Image pixel of each frequency ``f`` on the cube's channel grid (linear or tabular),
    extrapolated linearly beyond its ends."""
    order = np.argsort(freqs_hz)
    fs, idx = freqs_hz[order], order.astype(float)
    pix = np.interp(f, fs, idx)
    below, above = f < fs[0], f > fs[-1]
    pix[below] = idx[0] + (f[below] - fs[0]) * (idx[1] - idx[0]) / (fs[1] - fs[0])
    pix[above] = idx[-1] + (f[above] - fs[-1]) * (idx[-1] - idx[-2]) / (fs[-1] - fs[-2])
    return pix


def low_edges(selpars: dict, grid: CubeGrid) -> list[list[int]]:
    """``[[low_lo, low_hi, top], ...]`` per selected spw lying inside the cube, in image pixels
    (see ``LowEdges``): ``low_lo``..``low_hi`` the lowest pixel the spw's data map to (a range
    where the data's frame drifts against the image's), ``top`` the highest (the cube's last
    channel when the data may reach past it).

    CASA quirk (FTMachine::matchChannel and getInterpolateArrays, GridFT::get): a data channel
    just outside the image (within 0.5 channel below to 4 channels above for cubic) is mapped
    to -2, and the degridding then takes the lowest image channel to predict as
    ``min(chanMap)``: -2 (every channel) when the vb has such a channel, else the lowest
    channel the spw's data map to. The channels below that are not degridded, so the cubic
    (or linear) interpolation of the model onto the spw's lowest data channels uses zeros
    there in serial, and a chunk whose sub-cube ends inside the spw (its data run past the
    sub-cube's top: -2) uses the real model. Measured (fuzz seed 2143: LSRK data, spw 2 of
    decreasing frequency on image pixels 17.42..38.42 of a 39-channel cube, cubic): after one
    minor cycle with equal models, every chunk gridding channel 18 up to a channel below 38
    gave residual channel 18 6.5e-3 of peak off (19: 2.4e-4, 20: 6.5e-4); gridded up to 38,
    equal."""
    nchan = int(grid.nchan)
    if nchan < 2 or grid.width <= 0:
        return []
    out = set()
    for f, p_lo, p_hi in spw_pixels(selpars, grid):
        if len(f) < 2 or f[1] == f[0]:
            continue  # a 1-channel vb is gridded without interpolation
        # the lowest and highest pixel the spw's data map to, over the observation
        low = sorted((float(p_lo.min()), float(p_hi.min())))
        high = sorted((float(p_lo.max()), float(p_hi.max())))
        if low[0] > nchan - 0.5 or high[1] < -0.5:
            continue  # outside the cube
        if _reaches_past_top(p_lo, p_hi, nchan):
            continue  # every vb has data just past the top (-2): all channels are degridded
        low_lo = max(0, int(np.floor(low[0] - 1e-6 + 0.5)))
        low_hi = min(nchan - 1, int(np.floor(low[1] + 1e-6 + 0.5)))
        if low_hi < 1:
            continue  # the lowest channel it maps to is the cube's first: none below
        top = min(nchan - 1, int(np.floor(high[1] + 1e-6 + 0.5)))
        out.add((low_lo, low_hi, top))
    return [list(x) for x in sorted(out)]


def _reaches_past_top(p_lo: np.ndarray, p_hi: np.ndarray, nchan: int) -> bool:
    """Whether a data channel lies within one image channel past the cube's top at every
    Doppler of the observation (``matchChannel`` maps it to -2 there)."""
    return all(bool(np.any((p > nchan - 0.5 + 1e-6) & (p < nchan + 0.5 - 1e-6)))
               for p in (p_lo, p_hi))
