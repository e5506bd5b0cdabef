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

The values that decide a chunk's reach in neighbour channels are in ``reach``. Values that can
only be known from the chunks' psfs (the psf beam fill, the common restoring
beam) are computed by the cycle loop (``pclean.run.psfbeams``).
"""
from __future__ import annotations

import os

from pclean import casa
from pclean.params.errors import ParameterError
from pclean.params.gridders import family
from pclean.params.imager import full_imager, with_start_model
from pclean.params.provider import PlanContext, Provider
from pclean.params.reach import DataHalo, GridStarts, InterpAnchors, LowEdges, ModelHalo
from pclean.params.validate import has_start_model, start_models


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


class StartModel(Provider):
    """The start model on the full cube's grid, as serial's ``.model`` starts.

    Serial copies ``startmodel`` into the model when it is on the image's grid and regrids it
    onto the image's coordinate system otherwise (SIImageStore::setModelImageOne, masked
    pixels set to zero first). A chunk's image is a sub-cube, never on the start model's grid:
    it would regrid a cube onto its channels itself. The coordinator has CASA do serial's
    step once, for the full cube (a full-cube imager defined with the start model writes it
    as ``<prefix>.model``); each chunk copies its channels of that (and its halo channels')."""

    name = "startmodel"

    def needed(self, ctx):
        return has_start_model(ctx.params)

    def compute(self, ctx):
        from pclean.casa import frames

        path = f"{ctx.workdir.startmodel}.model"
        rec = with_start_model(ctx.records, start_models(ctx.params)[0])
        frames.start_afresh(ctx.params["vis"])  # as the fresh process serial regrids it in
        with full_imager(rec, imagename=ctx.workdir.startmodel):
            pass  # defineimage writes <prefix>.model from the start model
        if not os.path.isdir(path):
            raise RuntimeError(f"CASA did not write the start model on the cube's grid ({path})")
        return path


PROVIDERS = (StartModel(), FracBW(), ModelHalo(), DataHalo(), GridStarts(), InterpAnchors(),
             LowEdges(), CycleThreads(), PrimaryBeamModel(), WeightDensity())

__all__ = ["PROVIDERS", "ChunkHooks", "PlanContext", "Provider", "compute", "cube_products",
           "uses_shared_density"]


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
