"""tclean parameters -> a validated plan, computed once on the coordinator.

The plan holds every quantity that spans the whole cube: the output channel grid (resolved by
CASA, see ``spectral``), fracBW for briggsbwtaper, the shared weight density when
``perchanweightdensity=False``, the restoring-beam policy, and the chunk plan. Workers receive
these values; they never recompute them from their own sub-cube.
"""
from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass

import numpy as np

from pclean import casaenv, casahelpers, chunking, schema, spectral
from pclean.workers import ChunkSpec

CUBE_MODES = ("cube", "cubedata", "cubesource")
PRODUCTS = ("psf", "residual", "model", "image", "pb", "sumwt", "mask", "image.pbcor", "weight")

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
    for name in ("nworkers", "chanchunk"):
        value = params.get(name)
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise ParameterError(f"{name} must be a positive integer, got {value!r}")
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
                                 f"cube imaging yet: {reason}")
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
    existing = [f"{p['imagename']}.{prod}" for prod in PRODUCTS
                if os.path.exists(f"{p['imagename']}.{prod}")]
    if existing:
        raise ParameterError("output images exist and would be overwritten: "
                             + ", ".join(existing) + " (remove them or choose another imagename)")
    parent = os.path.dirname(os.path.abspath(p["imagename"]))
    if not os.path.isdir(parent):
        raise ParameterError(f"imagename: directory {parent} does not exist")


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
        grid = spectral.resolve_grid(full.getSelPars(), full.getImagePars()["0"],
                                     full.getGridPars()["0"])
    except RuntimeError as exc:
        raise ParameterError(f"CASA could not define the cube from this selection: {exc}") from None

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
    return Plan(params=p, imager=full, grid=grid, chunks=[], workroot=workroot,
                fracbw=fracbw, common_beam=common)


def halo(first: int, n: int, nchan: int, deconvolving: bool) -> tuple[int, int]:
    """Halo channels (before, after) a chunk images besides its own (see ChunkSpec)."""
    has_before, has_after = first > 0, first + n < nchan
    if deconvolving:  # model prediction at the edges needs the neighbours' models
        return int(has_before), int(has_after)
    if n == 1 and nchan > 1:  # a 1-channel image is gridded without interpolation
        return (0, 1) if has_after else (1, 0)
    return 0, 0


def split_chunks(plan: Plan, nworkers: int, memory_limit_mb: float | None = None) -> None:
    """The chunk plan: each chunk described in the user's terms (see ``spectral``)."""
    p, full, grid = plan.params, plan.imager, plan.grid
    impars, selpars = full.getImagePars()["0"], full.getSelPars()
    gridpars = dict(full.getGridPars()["0"], **({"vptable": plan.vptable} if plan.vptable else {}))
    normpars, decpars = full.getNormPars()["0"], full.getDecPars()["0"]
    weightpars = dict(full.getWeightPars())
    deconvolving = int(p["niter"]) > 0
    plan.chunks = []
    for index, (first, n) in enumerate(chunking.plan(
            grid.nchan, nworkers, p["chanchunk"], chunking.plane_pixels(impars["imsize"]),
            memory_limit_mb)):
        before, after = halo(first, n, grid.nchan, deconvolving)
        img_first, img_nchan = first - before, n + before + after
        workdir = os.path.join(plan.workroot, f"chunk-{index:04d}")
        # unique names: a virtual gather moves the chunk images side by side
        name = os.path.join(workdir, f"chunk-{index:04d}")
        cimpars = copy.deepcopy(impars)
        cimpars.update(imagename=name, nchan=img_nchan,
                       start=spectral.chunk_start(impars, grid, img_first))
        plan.chunks.append(ChunkSpec(
            index=index, first=first, nchan=n, workdir=workdir, selpars=selpars,
            impars=cimpars, gridpars=copy.deepcopy(gridpars),
            normpars=dict(normpars, imagename=name), weightpars=dict(weightpars),
            decpars=dict(decpars, imagename=name),
            expected_freqs_hz=grid.freqs_hz[img_first:img_first + img_nchan],
            deconvolve=deconvolving or bool(p["restoration"]),
            fracbw=plan.fracbw, weight_density=plan.weight_density,
            halo_before=before, halo_after=after))


def add_primary_beam_model(plan: Plan) -> None:
    """Chunks must use the beam model serial tclean picks for the whole cube (primarybeam)."""
    p = plan.params
    if p["vptable"] or "stand" not in plan.imager.getGridPars()["0"]["gridder"]:
        return
    from pclean import primarybeam

    plan.vptable = primarybeam.pin_model(p["vis"], plan.grid.freqs_hz[0],
                                         os.path.join(plan.workroot, "serial-pb.vptable"))


def add_shared_weight_density(plan: Plan) -> None:
    """perchanweightdensity=False with uniform/briggs: one density grid for the whole cube.

    CASA grids the weights of every channel of the selection onto one uv grid; a chunk would
    only see its own channels. The coordinator computes it once with a full-cube imager and
    every chunk loads it (synthesisimager.setweightdensity)."""
    p = plan.params
    if p["perchanweightdensity"] or p["weighting"] in ("natural", "radial"):
        return
    ct = casaenv.tools()
    name = os.path.join(plan.workroot, "density", "img")
    os.makedirs(os.path.dirname(name), exist_ok=True)
    impars = dict(plan.imager.getImagePars()["0"], imagename=name)
    si = ct.synthesisimager()
    try:
        for key in sorted(plan.imager.getSelPars()):
            si.selectdata(plan.imager.getSelPars()[key])
        si.defineimage(impars, plan.imager.getGridPars()["0"])
        si.setweighting(**plan.imager.getWeightPars())
        density = str(si.getweightdensity())  # writes <name>.gridwt, returns its path
    finally:
        si.done()
    if not os.path.isdir(density):
        raise RuntimeError(f"CASA did not write the shared weight density image ({density})")
    plan.weight_density = density


def cleanup_workroot(plan: Plan) -> None:
    shutil.rmtree(plan.workroot, ignore_errors=True)
