"""Calls pclean refuses before any worker starts: where chunks cannot be made equal to serial
tclean, or where serial tclean itself fails (so that pclean does not fail after starting).

Each refusal says why and what to do instead; each was found by the differential fuzzer or on
real data, and the measurement is beside it."""
from __future__ import annotations

import os

import numpy as np

from pclean import casa
from pclean.params.deconvolvers import NSIGMA_SAFE, minor_block
from pclean.params.errors import ParameterError, cannot_be_equal, serial_fails


def check_call(p: dict) -> None:
    """Refusals that need no cube definition."""
    several_ms = isinstance(p["vis"], (list, tuple)) and len(p["vis"]) > 1
    if several_ms and p["perchanweightdensity"] and p["weighting"] in (
            "briggs", "briggsabs", "briggsbwtaper", "uniform"):
        # CASA quirk (BriggsCubeWeightor::initImgWeightCol): with several MSs the per-channel
        # density is padded by channels worked out from each MS's overlap with the image, and
        # processed MS by MS when that padding is large against the image's channels: a
        # sub-cube takes that path where the whole cube does not, and there CASA indexes past
        # its per-channel arrays (measured on 3 MSs of one spw each: serial tclean segfaulted in
        # BriggsCubeWeightor::getWeightUniform in 2 of 4 identical runs of a 5-channel cube, and
        # chunks of that cube crashed)
        raise cannot_be_equal(
            f"vis (a list of {len(p['vis'])} MSs) with weighting={p['weighting']!r} and "
            "perchanweightdensity=True",
            "CASA's per-channel Briggs weighting treats several MSs differently for a sub-cube "
            "than for the whole cube, and reads past its own arrays on that path",
            "perchanweightdensity=False (one density over all channels, which pclean makes "
            "exact), natural weighting, or the MSs concatenated into one (casatasks.concat)")


def check_grid(p: dict, grid) -> None:
    """Refusals that need the full cube's grid (``spectral.CubeGrid``)."""
    if "tabular" in grid.csys.get("spectral2", {}) and grid.nchan > 1:
        # CASA quirk: a velocity grid that is not linear in frequency (optical, z, beta, ...)
        # is a tabular spectral axis, and the gridder maps data to a sub-cube of it
        # differently from the whole cube even where every channel's frequency is the same
        # (measured: psf 1.8e-3 of peak off in every chunk, sumwt equal, beams 0.2% off)
        raise cannot_be_equal(
            f"veltype={p['veltype']!r} with a velocity start/width",
            "its channels are not evenly spaced in frequency, and CASA grids a part of such a "
            "cube differently from the whole", "veltype='radio' (evenly spaced channels)")
    if p["interpolation"] == "cubic":
        # CASA quirk: cubic frequency interpolation (InterpolateArray1D) needs four points, of
        # the data to grid and of the image to predict from; with fewer, serial tclean fails
        # ("One or more of the cube section failed in de/gridding"; measured with 3 selected
        # data channels, and with a 3-channel cube when deconvolving)
        fewest = fewest_selected_channels(p)
        if fewest < 4:
            raise serial_fails(
                "interpolation='cubic'", f"a selected spw has {fewest} channel(s); CASA's cubic "
                "interpolation of the data needs 4", "interpolation='linear'")
        if int(p["niter"]) > 0 and grid.nchan < 4:
            raise serial_fails(
                "interpolation='cubic'", f"the cube has {grid.nchan} channel(s); predicting a "
                "model with cubic interpolation needs 4", "interpolation='linear'")
    if (int(p["niter"]) > 0 and float(p["nsigma"]) > 0 and grid.nchan > 1
            and (p["deconvolver"] not in NSIGMA_SAFE or p["fullsummary"])):
        # CASA quirk (SDAlgorithmBase::deconvolve, SIMinorCycleController::majorCycleRequired):
        # the minor-cycle controller keeps the n-sigma threshold of the last channel that set
        # one and tests the next channel's start against it; each cycle it starts from nsigma x
        # the largest robust rms of the channels it deconvolves. Serial's controller sees the
        # whole cube, a chunk's only its own channels, so a channel with its peak below the
        # cycle threshold is entered by one and skipped by the other. Hogbom then does nothing
        # (only the plane's stop code, reported with fullsummary, differs: 3 against 2);
        # measured on fuzz seed 1132 (an empty channel at the band edge, nsigma 3):
        # multiscale iterates 4 more times in serial, clark reports peak residuals of 1.5e36
        # there and differs in later cycles.
        raise cannot_be_equal(
            f"nsigma={p['nsigma']} with deconvolver={p['deconvolver']!r}"
            + (" and fullsummary=True" if p["fullsummary"] else ""),
            "CASA carries the n-sigma threshold from one channel's minor cycle into the next "
            "channel's stopping test, starting from the largest noise of all channels it "
            "deconvolves, which a chunk of the cube cannot see",
            "deconvolver='hogbom' with fullsummary=False, or a threshold instead of nsigma")
    if nsigma_per_stokes_needs_wide_chunks(p, grid) and 1 in chunk_sizes_asked(p, grid.nchan):
        raise cannot_be_equal(
            f"chanchunk={p['chanchunk']!r} with nsigma={p['nsigma']} and "
            f"stokes={p['stokes']!r}", "a 1-channel chunk's minor cycle judges every Stokes "
            "plane by the noise of the first one, serial's cube judges each by its own",
            "chunks of 2 or more channels (the default plan makes none of 1 here)")
    block = minor_block(p["imsize"])
    if int(p["niter"]) > 0 and grid.nstokes > 1 and not p["fullsummary"] and grid.nchan > block:
        # CASA quirk: without fullsummary the minor-cycle summary numbers a plane channel +
        # Stokes x block channels + block start, which collides across blocks; casatasks'
        # SummaryMinor then fails (measured: IndexError in indexMinorCycleSummaryBySubimage,
        # 1000x1000 pixels, 14 channels, stokes IQ)
        raise serial_fails(
            f"stokes={p['stokes']!r} with {grid.nchan} channels of {p['imsize']} pixels and "
            "fullsummary=False", "at its end: its minor-cycle summary cannot number "
            f"{grid.nstokes} Stokes planes in channel blocks of {block}", "fullsummary=True")
    if isinstance(p["chanchunk"], (list, tuple)) and sum(p["chanchunk"]) != grid.nchan:
        raise ParameterError(f"chanchunk: the chunk sizes add up to {sum(p['chanchunk'])} "
                             f"channels, the cube has {grid.nchan}")
    if p["weighting"] == "briggsbwtaper" and not grid.fracbw > 0:
        raise ParameterError("weighting='briggsbwtaper' needs a cube spanning more than one "
                             f"frequency (full-cube fracBW = {grid.fracbw})")


def fewest_selected_channels(p: dict) -> int:
    """The fewest data channels the spw selection takes from any spw of the MSs."""
    ct = casa.tools()
    ms, tb = ct.ms(), ct.table()
    fewest = None
    vis = list(np.atleast_1d(p["vis"]))
    spws = p["spw"] if isinstance(p["spw"], list) else [p["spw"]] * len(vis)
    try:
        for path, spw in zip(vis, spws):
            counts = {}
            if str(spw).strip() not in ("", "*"):
                ranges = ms.msseltoindex(vis=str(path), spw=str(spw))["channel"]
                for s, start, end, step in np.atleast_2d(ranges):
                    counts[int(s)] = counts.get(int(s), 0) + (int(end) - int(start)) // max(
                        1, int(step)) + 1
            if not counts:
                tb.open(os.path.join(str(path), "SPECTRAL_WINDOW"))
                counts = dict(enumerate(int(n) for n in tb.getcol("NUM_CHAN")))
                tb.close()
            fewest = min(([fewest] if fewest is not None else []) + list(counts.values()))
    finally:
        ms.done()
        tb.done()
    return int(fewest if fewest is not None else 0)


def nsigma_per_stokes_needs_wide_chunks(p: dict, grid) -> bool:
    """Whether 1-channel chunks would differ: nsigma over several Stokes planes of a wider cube.

    CASA quirk (SDAlgorithmBase::deconvolve picks a plane's robust rms by (Stokes, channel)
    only when the statistics it was given are two-dimensional): a 1-channel image is
    deconvolved by the single-image minor cycle with its own statistics, and every Stokes plane
    then gets the first plane's n-sigma threshold; serial's cube minor cycle gets each plane's.
    Measured (fuzz seed 2164, stokes IV, nsigma 3, hogbom): chunks [6, 1, 5] gave channel 6's
    Stokes V 1 iteration a cycle where serial did 3 (residual 0.29 of peak off); [6, 2, 4] and
    [4, 4, 4] are equal."""
    return (int(p["niter"]) > 0 and float(p["nsigma"]) > 0 and grid.nstokes > 1
            and grid.nchan > 1)


def chunk_sizes_asked(p: dict, nchan: int) -> list[int]:
    """The chunk sizes the user's chanchunk gives (none for the default plan)."""
    chanchunk = p["chanchunk"]
    if isinstance(chanchunk, (list, tuple)):
        return [int(n) for n in chanchunk]
    if chanchunk:
        return [min(int(chanchunk), nchan - first) for first in range(0, nchan, int(chanchunk))]
    return []
