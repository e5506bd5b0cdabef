"""Cube-wide values that decide a chunk's reach: the neighbour channels its gridded sub-cube
holds besides its own (model planes, data channels) and where it may start and end (see
``cubewide`` for what a provider is, ``chunking`` for how a chunk uses them)."""
from __future__ import annotations

import os

import numpy as np

from pclean import casa
from pclean.params.provider import Provider
from pclean.params.validate import has_model


class ModelHalo(Provider):
    """Model planes a chunk grids each side of its own channels (``chunking.model_halo``):
    from the interpolation and the widest data channel against the image's channel width."""

    name = "model_halo"

    def needed(self, ctx):
        return has_model(ctx.params)

    def compute(self, ctx):
        from pclean.params.chunking import model_halo

        widest = widest_data_channel(ctx.params["vis"])
        width = ctx.grid.width
        # a 1-channel tabular (optical velocity) axis has no increment: nothing is chunked there
        return model_halo(ctx.params["interpolation"], widest / width if width > 0 else 1)


class DataHalo(Provider):
    """Neighbour channels each side a chunk grids when data channels are wider than image
    channels (``chunking.halo``).

    CASA quirk: a sub-cube's data selection is narrowed to the data channels in its own
    frequency range, and FTMachine::interpolateFrequencyTogrid interpolates the data onto the
    image channels (cubic: the four nearest data channels, flagged outside the selected ones;
    a 1-channel vb is not interpolated at all but mapped to the pixel nearest its frequency).
    A sub-cube narrower than a few data channels then grids its edge channels from other data
    channels than serial's full cube, or none. Measured (fuzz seed 2130: 13.1 MHz image
    channels over a spw of 19.7 MHz channels, cubic, 1-channel chunks gridding one neighbour):
    every third chunk's selection held one data channel, mapped to the neighbour, and its own
    channel's psf was blank where serial's is not (beam 6.524 vs 6.625 arcsec). Reach: that of
    the interpolation, in image channels (as ``chunking.model_halo``)."""

    name = "data_halo"

    def needed(self, ctx):
        return ctx.params["interpolation"] != "nearest" and ctx.grid.nchan > 1

    def compute(self, ctx):
        from pclean.params.chunking import model_halo

        width = ctx.grid.width
        if not width > 0:
            return 0
        ratio = widest_data_channel(ctx.params["vis"]) / width
        return model_halo(ctx.params["interpolation"], ratio) if ratio > 1 + 1e-9 else 0


class GridStarts(Provider):
    """The channels a chunk's gridded sub-cube may start at: those where CASA's gridder sees
    the full cube's channel spacing (``spectral.gridder_spacings``; nearest interpolation does
    not use it). A chunk starting elsewhere grids from the nearest such channel before it
    (``chunking.grid_start``). Channel 0 always qualifies; the last never does (a 1-channel
    sub-cube is gridded without interpolation, see ``chunking.halo``)."""

    name = "grid_starts"

    def needed(self, ctx):
        return ctx.params["interpolation"] != "nearest" and ctx.grid.nchan > 1

    def compute(self, ctx):
        from pclean.params.spectral import gridder_spacings

        spacing = gridder_spacings(ctx.grid.csys, ctx.grid.nchan)
        return [bool(x) for x in spacing == spacing[0]] + [False]


class InterpAnchors(Provider):
    """Channels whose gridding depends on where the gridded sub-cube is anchored, and the end of
    the cube it must then reach (``chunking.chunk_specs``): ``[[channel, "start"|"end"], ...]``.

    CASA quirk (FTMachine::interpolateFrequencyTogrid, image channels wider than data
    channels): the data are interpolated onto a list of frequencies built by repeated addition
    (``interpVisFreq_p[k] = interpVisFreq_p[k-1] + interpwidth``) from an anchor, the sub-cube's
    highest image frequency for data of decreasing frequency (its lowest for increasing),
    moved to the channel bracketing the data's edge when the sub-cube reaches past it; the
    points are interpolated with ``extrapolate=False``. When an image channel is a whole
    number of data channels those points fall on the data channels themselves, and the one
    for the data's far edge (the last selected channel, many additions from the anchor) lies
    a few ulps inside or outside the data, flagged or not, vb by vb. A sub-cube anchored at
    another channel adds the steps from elsewhere and flags other vbs. Measured (fuzz seed
    2032: TOPO cube of TOPO data, spw 0:0~11, image channel = 2 data channels, decreasing
    frequency): the chunk gridding channels 2-6 gave channel 5 (data channels 10-11) a sumwt
    of 0.26988471 for serial's 0.26988187, psf 3e-3 of peak off, and the image 1.7e-3;
    gridded from channel 0 it is equal. A chunk owning such a channel therefore grids from the
    cube's end on the anchor's side (starting at or before the anchor keeps it: the bracket
    is the same channel). Only the far edge: a chunk reaching the near edge contains the
    anchor already."""

    name = "interp_anchors"

    def needed(self, ctx):
        return ctx.params["interpolation"] != "nearest" and ctx.grid.nchan > 1

    def compute(self, ctx):
        from pclean.params.interpolation import interp_anchors

        return interp_anchors(ctx.records.selpars, ctx.grid)


class LowEdges(Provider):
    """Spws whose prediction a chunk must grid to their top channel (``chunking.low_top``):
    ``[[low_lo, low_hi, top], ...]`` in image pixels. CASA does not degrid the image channels
    below a spw's lowest unless the vb has data past the sub-cube's top; see
    ``interpolation.low_edges`` for the quirk and its measurement (fuzz seed 2143)."""

    name = "low_edges"

    def needed(self, ctx):
        return (ctx.params["interpolation"] != "nearest" and ctx.grid.nchan > 1
                and has_model(ctx.params))

    def compute(self, ctx):
        from pclean.params.interpolation import low_edges

        return low_edges(ctx.records.selpars, ctx.grid)


def widest_data_channel(vis) -> float:
    """The widest channel (Hz) of any spw of the MSs: how far a frequency interpolation over
    the data reaches."""
    tb = casa.tools().table()
    widest = 0.0
    for ms in np.atleast_1d(vis):
        tb.open(os.path.join(str(ms), "SPECTRAL_WINDOW"))
        try:
            widest = max([widest] + [float(np.abs(tb.getcell("CHAN_WIDTH", r)).max())
                                     for r in range(tb.nrows())])
        finally:
            tb.close()
    tb.done()
    return widest
