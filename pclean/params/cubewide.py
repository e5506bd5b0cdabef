"""Cube-wide values: quantities that span the whole cube, computed once on the coordinator and
handed to every chunk, never recomputed from a sub-cube.

Each value is a provider: is it needed for these parameters (``needed``), compute it on the
coordinator (``compute``, a plain value: a number or a path in the work directory), apply it in
a chunk (the hooks below, called by the chunk actor at those points of its set-up and cycles).
The plan carries the values as one record, ``{provider name: value}``. Adding a cube-wide value
is adding a provider to ``PROVIDERS``.

Chunk hooks (each optional):
  gridpars(value, gridpars) -> gridpars   before the chunk defines its images
  weighting(value, weightpars, si) -> weightpars   before ``setweighting``
  weighted(value, si)                     after ``setweighting``
  absent(si)                              in a chunk of a run that does not need the value
  psf_made(value, before, si) -> report   after ``makepsf`` (``before``: ``before_psf()``)
  cycle_threads(value) -> int             OpenMP threads for its major and minor cycles

Values that can only be known from the chunks' psfs (the psf beam fill, the common restoring
beam) are computed by the cycle loop (``pclean.run.psfbeams``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from pclean import casa
from pclean.params.errors import ParameterError
from pclean.params.gridders import family
from pclean.params.imager import ImagingRecords, full_imager
from pclean.params.spectral import CubeGrid
from pclean.params.workdir import WorkDir


@dataclass(frozen=True)
class PlanContext:
    """What a provider may read on the coordinator."""

    params: dict
    records: ImagingRecords
    grid: CubeGrid
    workdir: WorkDir


class Provider:
    name = ""
    product = None  # a cube product this value is kept as (products.CUBE_PRODUCTS)

    def needed(self, ctx: PlanContext) -> bool:
        raise NotImplementedError

    def compute(self, ctx: PlanContext):
        raise NotImplementedError


class FracBW(Provider):
    """briggsbwtaper tapers by the fractional bandwidth of the cube it is given: a sub-cube's
    is wrong (a 1-channel chunk's is 0, and an exception). Serial's definition: first and last
    channel of the full image, in its frame (``CubeGrid.fracbw``). Stock casatools take it
    through the fracBW shim, a rebuilt one through ``setweighting(fracbw=)``."""

    name = "fracbw"

    def needed(self, ctx):
        return ctx.params["weighting"] == "briggsbwtaper"

    def compute(self, ctx):
        from pclean.casa import fracbw

        try:
            fracbw.require(casa.tools().synthesisimager.setweighting)
        except RuntimeError as exc:
            raise ParameterError(str(exc)) from None
        return float(ctx.grid.fracbw)

    def weighting(self, value, weightpars, si):
        from pclean.casa import fracbw

        if fracbw.accepts_fracbw(si.setweighting):
            return dict(weightpars, fracbw=value)  # a casatools rebuilt with patches/
        fracbw.set_value(value)  # stock wheel: the shim substitutes it
        return weightpars

    def absent(self, si):
        from pclean.casa import fracbw

        if fracbw.loaded():
            fracbw.set_value(0.0)  # a reused worker: no value left over from an earlier run

    def before_psf(self):
        from pclean.casa import fracbw

        return fracbw.substitutions()

    def psf_made(self, value, before, si):
        from pclean.casa import fracbw

        return {"fracbw_substitutions": fracbw.check_applied(before, value, si.setweighting)}


def uses_shared_density(p: dict) -> bool:
    """Is the weight density gridded once over every channel of the selection (casacore's
    VisImagingWeight), not per channel (BriggsCubeWeightor)? superuniform always is; uniform
    and the briggs kinds are with perchanweightdensity=False."""
    if p["weighting"] == "superuniform":
        return True
    return not p["perchanweightdensity"] and p["weighting"] not in ("natural", "radial")


class WeightDensity(Provider):
    """One density grid for the whole cube where serial grids one over all channels.

    CASA grids the weights of every channel of the selection onto one uv grid; a chunk would
    only see its own channels (its data selection is narrowed to them). The coordinator
    computes it once with a full-cube imager and every chunk loads it
    (synthesisimager.setweightdensity). Serial tclean leaves this image as
    ``<imagename>.gridwt``; so does the gather."""

    name = "weight_density"
    product = "gridwt"

    def needed(self, ctx):
        return uses_shared_density(ctx.params)

    def compute(self, ctx):
        with full_imager(ctx.records, imagename=ctx.workdir.density) as si:
            si.setweighting(**ctx.records.weightpars)
            density = str(si.getweightdensity())  # writes <name>.gridwt, returns its path
        if not os.path.isdir(density):
            raise RuntimeError(f"CASA did not write the shared weight density image ({density})")
        return density

    def weighted(self, value, si):
        si.setweightdensity(value)


class PrimaryBeamModel(Provider):
    """The canned primary-beam model serial picks for the whole cube, pinned as a vptable
    (see ``primarybeam``: CASA picks it from the image's first channel)."""

    name = "vptable"

    def needed(self, ctx):
        gridder = ctx.records.gridpars["0"]["gridder"]
        return not ctx.params["vptable"] and family(gridder).canned_pb_model

    def compute(self, ctx):
        from pclean.params import primarybeam

        return primarybeam.pin_model(ctx.params["vis"], ctx.grid.freqs_hz[0],
                                     ctx.workdir.vptable)

    def gridpars(self, value, gridpars):
        return dict(gridpars, vptable=value) if value else gridpars


class CycleThreads(Provider):
    """Serial's OpenMP threads, for the deconvolvers whose results depend on them
    (``deconvolvers.THREAD_SENSITIVE``)."""

    name = "cycle_threads"

    def needed(self, ctx):
        from pclean.params.deconvolvers import THREAD_SENSITIVE

        return ctx.params["deconvolver"] in THREAD_SENSITIVE

    def compute(self, ctx):
        return casa.omp_threads()

    def cycle_threads(self, value):
        return int(value)


class ModelHalo(Provider):
    """Model planes a chunk grids each side of its own channels (``chunking.model_halo``):
    from the interpolation and the widest data channel against the image's channel width."""

    name = "model_halo"

    def needed(self, ctx):
        return int(ctx.params["niter"]) > 0

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
                and int(ctx.params["niter"]) > 0)

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


PROVIDERS = (FracBW(), ModelHalo(), DataHalo(), GridStarts(), InterpAnchors(), LowEdges(),
             CycleThreads(), PrimaryBeamModel(), WeightDensity())


def compute(ctx: PlanContext) -> dict:
    """The cube-wide record for these parameters: every needed provider's value."""
    return {p.name: p.compute(ctx) for p in PROVIDERS if p.needed(ctx)}


def cube_products(values: dict) -> dict[str, str]:
    """{product: image} of the cube-wide values kept as final products."""
    return {p.product: values[p.name] for p in PROVIDERS
            if p.product and values.get(p.name)}


class ChunkHooks:
    """A chunk's side of the cube-wide record (used by the chunk actor)."""

    def __init__(self, values: dict):
        self.values = dict(values)

    def _present(self, hook: str):
        for p in PROVIDERS:
            if p.name in self.values and hasattr(p, hook):
                yield p, self.values[p.name]

    def gridpars(self, gridpars: dict) -> dict:
        for p, value in self._present("gridpars"):
            gridpars = p.gridpars(value, gridpars)
        return gridpars

    def set_weighting(self, si, weightpars: dict) -> None:
        """``setweighting`` with every value that takes part in it, before and after."""
        for p in PROVIDERS:
            if p.name not in self.values and hasattr(p, "absent"):
                p.absent(si)
        for p, value in self._present("weighting"):
            weightpars = p.weighting(value, weightpars, si)
        si.setweighting(**weightpars)
        for p, value in self._present("weighted"):
            p.weighted(value, si)

    def before_psf(self) -> dict:
        return {p.name: p.before_psf() for p, _v in self._present("before_psf")}

    def psf_made(self, before: dict, si) -> dict:
        report = {}
        for p, value in self._present("psf_made"):
            report.update(p.psf_made(value, before.get(p.name), si))
        return report

    def cycle_threads(self) -> int | None:
        for p, value in self._present("cycle_threads"):
            return p.cycle_threads(value)
        return None
