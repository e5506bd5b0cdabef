"""tclean parameters -> a validated plan, computed once on the coordinator.

The plan holds every quantity that spans the whole cube: the output channel grid (resolved by
CASA, see ``spectral``), fracBW for briggsbwtaper, the shared weight density when
``perchanweightdensity=False``, the restoring-beam policy, and the chunk plan. Workers receive
these values; they never recompute them from their own sub-cube.
"""
from __future__ import annotations

import contextlib
import copy
import os
import shutil
from dataclasses import dataclass

import numpy as np

from pclean import casaenv, casahelpers, chunking, schema, spectral
from pclean.chunking import ChunkSpec

CUBE_MODES = ("cube", "cubedata", "cubesource")
# CASA quirk: with these deconvolvers serial tclean's results depend on its number of OpenMP
# threads (measured, serial at 1 and 2 threads on the same data: clark residual 3.4e-6 of peak
# apart, mem model 6.3e-6; hogbom and multiscale bitwise equal), through the major cycles (a
# chunk's major cycles at 1 thread and everything else at 2 left 1.7e-5 of a deep residual's peak;
# its minor cycles at 1 thread, nothing). Chunks run their cycles with the threads serial tclean
# would have here, and are then bitwise equal to it.
THREAD_SENSITIVE_DECONVOLVERS = ("clark", "clarkstokes", "mem")
# every product a run may write; the chunks write all but the shared weight density (.gridwt)
CHUNK_PRODUCTS = ("psf", "residual", "model", "image", "pb", "sumwt", "mask", "image.pbcor",
                  "weight")
PRODUCTS = CHUNK_PRODUCTS + ("gridwt",)

# tclean's names -> the names casatasks' ImagerParameters takes (as task_tclean renames them)
_RENAMES = {"vis": "msname", "timerange": "timestr", "uvrange": "uvdist", "observation": "obs",
            "intent": "state", "gain": "loopgain", "smallscalebias": "scalebias"}


class ParameterError(ValueError):
    """Bad input, found before any worker starts."""


@dataclass
class Plan:
    params: dict  # coerced tclean parameters + pclean's own
    imager: object  # casatasks ImagerParameters for the full cube
    grid: spectral.CubeGrid
    chunks: list[ChunkSpec]
    workroot: str
    fracbw: float | None = None
    weight_density: str | None = None
    vptable: str | None = None  # pins serial's primary-beam model (see primarybeam)
    common_beam: bool = False
    model_halo: int = 2  # model planes a chunk needs each side (chunking.model_halo)

    @property
    def single_beam(self) -> bool:
        """tclean restores with one beam for the whole cube: 'common' or a given beam."""
        rb = self.params["restoringbeam"]
        return any(str(b).strip() for b in (rb if isinstance(rb, list) else [rb]))

    @property
    def imagename(self) -> str:
        return self.params["imagename"]

    @property
    def niter(self) -> int:
        return int(self.params["niter"])


def is_cube(params: dict) -> bool:
    return params["specmode"] in CUBE_MODES


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------
def normalize(params: dict) -> dict:
    """Coerce with tclean's type rules and check what can be checked without CASA's imager."""
    def positive_int(value):
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1

    value = params.get("nworkers")
    if value is not None and not positive_int(value):
        raise ParameterError(f"nworkers must be a positive integer, got {value!r}")
    value = params.get("chanchunk")
    if isinstance(value, (list, tuple)):
        if not value or not all(positive_int(v) for v in value):
            raise ParameterError("chanchunk: a list of chunk sizes must hold positive integers, "
                                 f"got {value!r}")
        params = dict(params, chanchunk=[int(v) for v in value])
    elif value is not None and not positive_int(value):
        raise ParameterError("chanchunk must be a positive integer (channels per chunk) or a "
                             f"list of chunk sizes, got {value!r}")
    if params["gather"] not in ("virtual", "paged"):
        raise ParameterError(f"gather must be 'virtual' or 'paged', got {params['gather']!r}")
    if not params.get("vis"):
        raise ParameterError("vis: no MeasurementSet given")
    for ms in np.atleast_1d(params["vis"]):
        if not os.path.isdir(str(ms)) or not os.path.exists(os.path.join(str(ms), "table.dat")):
            raise ParameterError(f"vis: {ms!r} is not a MeasurementSet (no such table)")
    try:
        out = schema.coerce_tclean(params)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    out.update({p.name: params[p.name] for p in schema.PARALLEL_PARAMS})
    if not str(out["imagename"]).strip():
        raise ParameterError("imagename: an output image name is required")
    _absolute_paths(out)
    if out["specmode"] == "cont":
        out["specmode"] = "mfs"
    _check_imsize_cell(out)
    if is_cube(out):
        _check_cube(out)
    return out


def _absolute_paths(p: dict) -> None:
    """Workers run in directories of their own: every input path must be absolute."""
    if isinstance(p["vis"], (list, tuple)):
        p["vis"] = [os.path.abspath(v) for v in p["vis"]]
    else:
        p["vis"] = os.path.abspath(p["vis"])
    for name in ("vptable", "cfcache"):
        if p[name]:
            p[name] = os.path.abspath(p[name])
    masks = p["mask"] if isinstance(p["mask"], list) else [p["mask"]]
    masks = [os.path.abspath(m) if m and os.path.exists(m) else m for m in masks]
    p["mask"] = masks if isinstance(p["mask"], list) else masks[0]


def _check_imsize_cell(p: dict) -> None:
    imsize = np.atleast_1d(p["imsize"])
    if len(imsize) not in (1, 2) or any(int(n) < 1 for n in imsize):
        raise ParameterError(f"imsize must be one or two positive integers, got {p['imsize']!r}")
    cells = [c for c in np.atleast_1d(p["cell"]) if str(c).strip()]
    if not cells:
        raise ParameterError("cell: a pixel size is required (e.g. cell='1arcsec')")
    qa = casaenv.tools().quanta()
    for c in cells:
        q = qa.quantity(c) if isinstance(c, str) else qa.quantity(float(c), "arcsec")
        if not qa.compare(q, qa.quantity("1arcsec")) or q["value"] <= 0:
            raise ParameterError(f"cell: {c!r} is not a positive angle")


def _check_cube(p: dict) -> None:
    for name, (supported, reason) in schema.UNSUPPORTED.items():
        if not supported(p[name]):
            raise ParameterError(f"{name}={p[name]!r} is not supported by pclean's parallel "
                                 f"cube imaging yet: {reason}. Run serial tclean "
                                 "(casatasks.tclean) for this call.")
    if p["nchan"] == 0 or p["nchan"] < -1:
        raise ParameterError(f"nchan must be -1 (all) or a positive number, got {p['nchan']}")
    if int(p["niter"]) < 0:
        raise ParameterError(f"niter must be >= 0, got {p['niter']}")
    if p["weighting"] == "briggsbwtaper":
        # tclean's own constraints (task_tclean.py), enforced up front
        if not p["perchanweightdensity"]:
            raise ParameterError("weighting='briggsbwtaper' needs perchanweightdensity=True")
        if int(p["npixels"]) != 0:
            raise ParameterError("weighting='briggsbwtaper' needs npixels=0")
    _check_can_be_equal(p)
    existing = [f"{p['imagename']}.{prod}" for prod in PRODUCTS
                if os.path.exists(f"{p['imagename']}.{prod}")]
    if existing:
        raise ParameterError("output images exist and would be overwritten: "
                             + ", ".join(existing) + " (remove them or choose another imagename)")
    parent = os.path.dirname(os.path.abspath(p["imagename"]))
    if not os.path.isdir(parent):
        raise ParameterError(f"imagename: directory {parent} does not exist")


def cannot_be_equal(what: str, why: str, instead: str) -> ParameterError:
    """The refusal for a call pclean cannot make equal to serial tclean."""
    return ParameterError(f"{what}: pclean cannot make this cube equal to serial tclean's, so it "
                          f"does not start: {why}. Run serial tclean (casatasks.tclean) for this "
                          f"call{', or ' + instead if instead else ''}.")


def serial_fails(what: str, why: str, instead: str) -> ParameterError:
    """The refusal for a call serial tclean itself fails on."""
    return ParameterError(f"{what}: serial tclean fails on this call ({why}), so pclean does not "
                          f"start. Use {instead} (with pclean or with serial tclean).")


def _check_can_be_equal(p: dict) -> None:
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


# ---------------------------------------------------------------------------------------------
# tclean parameters -> casatasks' ImagerParameters (as task_tclean builds them)
# ---------------------------------------------------------------------------------------------
def imager_parameters(p: dict, **overrides):
    ImagerParameters = casahelpers.imager_helpers().ImagerParameters

    inp = {_RENAMES.get(k, k): v for k, v in p.items()}
    inp.update(overrides)
    inp["chanchunks"] = 1
    init = ImagerParameters.__init__
    names = init.__code__.co_varnames[1:init.__code__.co_argcount]
    defaults = dict(zip(names[-len(init.__defaults__):], init.__defaults__))
    bparm = {k: inp.get(k, defaults[k]) for k in names}
    if bparm["mosweight"] and bparm["gridder"] not in ("mosaic", "awp2"):
        bparm["mosweight"] = False  # as task_tclean does
    ip = ImagerParameters(**bparm)
    if not ip.checkParameters():
        raise ParameterError("CASA rejected the imaging parameters (see the CASA log for why)")
    return ip


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def full_imager(full, imagename: str | None = None, gridpars: dict | None = None):
    """A synthesisimager over the whole selection with the full cube defined (no image is
    written until something is gridded): the one place the coordinator asks CASA about the
    cube as serial tclean would see it."""
    ct = casaenv.tools()
    impars = dict(full.getImagePars()["0"])
    if imagename:
        impars["imagename"] = imagename
    si = ct.synthesisimager()
    try:
        for key in sorted(full.getSelPars()):
            si.selectdata(full.getSelPars()[key])
        si.defineimage(impars, gridpars or full.getGridPars()["0"])
        yield si
    finally:
        si.done()


def make_plan(p: dict) -> Plan:
    """Everything cube-wide, before any worker exists; chunks come with ``split_chunks``."""
    imagename = os.path.abspath(p["imagename"])
    p = dict(p, imagename=imagename)
    workroot = os.path.abspath(p["workdir"] or imagename + ".pclean-work")
    if os.path.exists(workroot):
        raise ParameterError(f"work directory {workroot} exists (left by an earlier run?); "
                             "remove it or set workdir")
    full = imager_parameters(p)
    try:
        with full_imager(full) as si:
            grid = spectral.resolve_grid(si)
    except (RuntimeError, ValueError) as exc:
        raise ParameterError(f"CASA could not define the cube from this selection: {exc}") from None
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
        fewest = _fewest_selected_channels(p)
        if fewest < 4:
            raise serial_fails(
                "interpolation='cubic'", f"a selected spw has {fewest} channel(s); CASA's cubic "
                "interpolation of the data needs 4", "interpolation='linear'")
        if int(p["niter"]) > 0 and grid.nchan < 4:
            raise serial_fails(
                "interpolation='cubic'", f"the cube has {grid.nchan} channel(s); predicting a "
                "model with cubic interpolation needs 4", "interpolation='linear'")
    from pclean.iteration import minor_block

    if (int(p["niter"]) > 0 and grid.nstokes > 1 and not p["fullsummary"]
            and grid.nchan > minor_block(p["imsize"])):
        # CASA quirk: without fullsummary the minor-cycle summary numbers a plane channel +
        # Stokes x block channels + block start, which collides across blocks; casatasks'
        # SummaryMinor then fails (measured: IndexError in indexMinorCycleSummaryBySubimage,
        # 1000x1000 pixels, 14 channels, stokes IQ)
        raise serial_fails(
            f"stokes={p['stokes']!r} with {grid.nchan} channels of {p['imsize']} pixels and "
            "fullsummary=False", "at its end: its minor-cycle summary cannot number "
            f"{grid.nstokes} Stokes planes in channel blocks of {minor_block(p['imsize'])}",
            "fullsummary=True")
    if isinstance(p["chanchunk"], (list, tuple)) and sum(p["chanchunk"]) != grid.nchan:
        raise ParameterError(f"chanchunk: the chunk sizes add up to {sum(p['chanchunk'])} "
                             f"channels, the cube has {grid.nchan}")

    fracbw = None
    if p["weighting"] == "briggsbwtaper":
        fracbw = grid.fracbw
        if not fracbw > 0:
            raise ParameterError("briggsbwtaper needs a cube spanning more than one frequency "
                                 f"(full-cube fracBW = {fracbw})")
        from pclean import fracbw as shim

        try:
            shim.require()
        except RuntimeError as exc:
            raise ParameterError(str(exc)) from None
    rb = p["restoringbeam"]
    common = rb == "common" or (isinstance(rb, list) and rb == ["common"])
    widest = _widest_data_channel(p["vis"])
    # a 1-channel tabular (optical velocity) axis has no increment: nothing is chunked there
    halo = chunking.model_halo(p["interpolation"], widest / grid.width if grid.width > 0 else 1)
    return Plan(params=p, imager=full, grid=grid, chunks=[], workroot=workroot,
                fracbw=fracbw, common_beam=common, model_halo=halo)


def _fewest_selected_channels(p: dict) -> int:
    """The fewest data channels the spw selection takes from any spw of the MSs."""
    ct = casaenv.tools()
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


def _widest_data_channel(vis) -> float:
    """The widest channel (Hz) of any spw of the MSs: how far a frequency interpolation over
    the data reaches."""
    tb = casaenv.tools().table()
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


def split_chunks(plan: Plan, nworkers: int, memory_limit_mb: float | None = None) -> None:
    """The chunk plan: each chunk a channel range of the full cube's grid (see ``spectral``)."""
    p, grid = plan.params, plan.grid
    try:
        sizes = chunking.plan(grid.nchan, nworkers, p["chanchunk"],
                              chunking.plane_pixels(p["imsize"]), memory_limit_mb)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    plan.chunks = [chunk_spec(plan, index, first, n) for index, (first, n) in enumerate(sizes)]
    chunking.link_halos(plan.chunks, plan.workroot)


def chunk_spec(plan: Plan, index: int, first: int, n: int) -> ChunkSpec:
    """Chunk ``index``: full-cube channels ``first`` .. ``first+n-1``, gridded with the halo
    channels its prediction needs (``chunking.halo``)."""
    p, full, grid = plan.params, plan.imager, plan.grid
    impars = full.getImagePars()["0"]
    gridpars = dict(full.getGridPars()["0"], **({"vptable": plan.vptable} if plan.vptable else {}))
    deconvolving = int(p["niter"]) > 0
    before, after = chunking.halo(first, n, grid.nchan, deconvolving, plan.model_halo)
    img_first, img_nchan = first - before, n + before + after
    workdir = os.path.join(plan.workroot, f"chunk-{index:04d}")
    # unique names: a virtual gather moves the chunk images side by side
    name = os.path.join(workdir, f"chunk-{index:04d}")
    grid_name = name + "-grid" if before or after else name
    return ChunkSpec(
        index=index, first=first, nchan=n, workdir=workdir, selpars=full.getSelPars(),
        cube_impars=copy.deepcopy(impars), grid_imagename=grid_name,
        gridpars=copy.deepcopy(gridpars),
        normpars=dict(full.getNormPars()["0"], imagename=grid_name),
        weightpars=dict(full.getWeightPars()),
        decpars=dict(full.getDecPars()["0"], imagename=name),
        expected_freqs_hz=grid.freqs_hz[img_first:img_first + img_nchan],
        deconvolve=deconvolving or bool(p["restoration"]), imagename=name,
        fracbw=plan.fracbw, weight_density=plan.weight_density,
        cycle_threads=(casaenv.omp_threads() if p["deconvolver"]
                             in THREAD_SENSITIVE_DECONVOLVERS else None),
        halo_before=before, halo_after=after)


def add_primary_beam_model(plan: Plan) -> None:
    """Chunks must use the beam model serial tclean picks for the whole cube (primarybeam)."""
    p = plan.params
    if p["vptable"] or "stand" not in plan.imager.getGridPars()["0"]["gridder"]:
        return
    from pclean import primarybeam

    plan.vptable = primarybeam.pin_model(p["vis"], plan.grid.freqs_hz[0],
                                         os.path.join(plan.workroot, "serial-pb.vptable"))


def uses_shared_density(p: dict) -> bool:
    """Is the weight density gridded once over every channel of the selection (casacore's
    VisImagingWeight), not per channel (BriggsCubeWeightor)? superuniform always is; uniform
    and the briggs kinds are with perchanweightdensity=False."""
    if p["weighting"] == "superuniform":
        return True
    return not p["perchanweightdensity"] and p["weighting"] not in ("natural", "radial")


def add_shared_weight_density(plan: Plan) -> None:
    """One density grid for the whole cube where serial grids one over all channels.

    CASA grids the weights of every channel of the selection onto one uv grid; a chunk would
    only see its own channels (its data selection is narrowed to them). The coordinator
    computes it once with a full-cube imager and every chunk loads it
    (synthesisimager.setweightdensity). Serial tclean leaves this image as
    ``<imagename>.gridwt``; so does the gather."""
    if not uses_shared_density(plan.params):
        return
    name = os.path.join(plan.workroot, "density", "img")
    os.makedirs(os.path.dirname(name), exist_ok=True)
    with full_imager(plan.imager, imagename=name) as si:
        si.setweighting(**plan.imager.getWeightPars())
        density = str(si.getweightdensity())  # writes <name>.gridwt, returns its path
    if not os.path.isdir(density):
        raise RuntimeError(f"CASA did not write the shared weight density image ({density})")
    plan.weight_density = density


def cleanup_workroot(plan: Plan) -> None:
    shutil.rmtree(plan.workroot, ignore_errors=True)
