"""tclean parameters -> the plan: plain records, computed once on the coordinator.

The plan holds every quantity that spans the whole cube: the imaging records casatasks would
hand casatools (every field), the output channel grid (resolved by CASA, see ``spectral``), the
cube-wide values (``cubewide``: fracBW, the shared weight density, the pinned primary-beam
model, ...), the restoring-beam policy, and the work directory. All of it before any worker
exists; only the chunk plan waits for the live workers (``with_chunks``: their number and
memory), and placement is a pure function of both (``placement``). Workers receive these
values; they never recompute them from their own sub-cube.

A plan is writable as a manifest (``manifest``), whose ``identity`` names the cube it makes:
the same identity means the same parameters, grid and cube-wide values.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np

from pclean.casa import frames
from pclean.jsonable import jsonable
from pclean.params import chunking, cubewide, refusals, resources, resume, spectral, validate
from pclean.params.chunking import ChunkSpec
from pclean.params.errors import ParameterError
from pclean.params.imager import ImagingRecords, full_imager, records
from pclean.params.workdir import WorkDir


@dataclass(frozen=True)
class Plan:
    params: dict  # coerced tclean parameters + pclean's own
    records: ImagingRecords  # casatasks' imaging records for the full cube, every field
    grid: spectral.CubeGrid
    workdir: WorkDir
    cubewide: dict  # {provider name: value} (see cubewide)
    chunks: tuple[ChunkSpec, ...] = field(default=())
    resumed: bool = False  # the plan of an interrupted run, continued (``resume``)

    @property
    def imagename(self) -> str:
        return self.params["imagename"]

    @property
    def fields(self) -> list[str]:
        return self.records.fields

    @property
    def deconvolves(self) -> bool:
        return int(self.params["niter"]) > 0

    @property
    def has_model(self) -> bool:
        """Is a model predicted: iterations make one, a start model is one."""
        return validate.has_model(self.params)

    @property
    def continues(self) -> bool:
        """A continued clean (calcres=False): from the earlier call's images."""
        return validate.continues(self.params)

    @property
    def common_beam(self) -> bool:
        """restoringbeam='common': one beam for the cube, from every channel's psf beam."""
        rb = self.params["restoringbeam"]
        return rb == "common" or (isinstance(rb, list) and rb == ["common"])

    @property
    def single_beam(self) -> bool:
        """tclean restores with one beam for the whole cube: 'common' or a given beam."""
        rb = self.params["restoringbeam"]
        return any(str(b).strip() for b in (rb if isinstance(rb, list) else [rb]))

    def outputs(self) -> dict[str, str]:
        """Each field's final image prefix (the main field's is ``imagename``)."""
        return {f: self.records.impars[f]["imagename"] for f in self.fields}

    def manifest(self) -> dict:
        """The plan as JSON-able data, with its identity."""
        body = {"params": jsonable({k: v for k, v in self.params.items()
                                     if k != "cluster" or isinstance(v, (str, type(None)))}),
                "records": jsonable(dataclasses.asdict(self.records)),
                "grid": {"nchan": self.grid.nchan, "frame": self.grid.frame,
                         "freqs_hz": [float(f) for f in self.grid.freqs_hz]},
                "cubewide": jsonable(self.cubewide),
                "chunks": [{"index": c.index, "first": c.first, "nchan": c.nchan,
                            "halo": [c.halo_before, c.halo_after]} for c in self.chunks]}
        cube = {k: body[k] for k in ("params", "grid", "cubewide")}
        cube["params"] = {k: v for k, v in cube["params"].items()
                          if k not in ("nworkers", "cluster", "cluster_options", "worker_memory",
                                       "keep_chunks", "workdir", "chanchunk", "fitsout")}
        identity = hashlib.sha256(json.dumps(cube, sort_keys=True).encode()).hexdigest()[:16]
        return {"identity": identity, **body}

    def write_manifest(self) -> str:
        path = self.workdir.manifest
        with open(path + ".tmp", "w") as f:
            json.dump(self.manifest(), f, indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)
        return path


def make_plan(p: dict) -> Plan:
    """Everything cube-wide, before any worker exists (the chunks come with ``with_chunks``).
    Creates the work directory; removes it again if planning fails."""
    imagename = os.path.abspath(p["imagename"])
    p = dict(p, imagename=imagename)
    workdir = WorkDir(os.path.abspath(p["workdir"] or imagename + ".pclean-work"))
    if os.path.exists(workdir.root):
        if not resume.is_run(workdir):
            raise ParameterError(f"workdir: {workdir.root} exists and is not an interrupted "
                                 "pclean run; remove it or set workdir")
        resume.acquire(workdir.root)  # an earlier run's processes have ended
        try:
            saved = resume.load(workdir, p)
        except BaseException:
            resume.release(workdir.root)
            raise
        if saved is not None:
            return saved
        resume.start_afresh(workdir)
    try:
        return _plan(p, workdir)
    except BaseException:
        resume.release(workdir.root)
        raise


def _plan(p: dict, workdir: WorkDir) -> Plan:
    imagename = p["imagename"]
    recs = records(p)
    frames.start_afresh(p["vis"])
    try:
        with full_imager(recs) as si:
            grid = spectral.resolve_grid(si)
    except (RuntimeError, ValueError) as exc:
        raise ParameterError(f"CASA could not define the cube from this selection: {exc}") from None
    refusals.check_grid(p, grid)
    if validate.continues(p):
        check_continued_images(p, grid)
    resources.check_writable(imagename, workdir.root)
    resources.check_disk(p, grid.nchan, grid.nstokes, workdir.root, int(p["niter"]) > 0)
    workdir.create()
    resume.acquire(workdir.root)
    try:
        values = cubewide.compute(cubewide.PlanContext(p, recs, grid, workdir))
        plan = Plan(params=p, records=recs, grid=grid, workdir=workdir, cubewide=values)
        resume.save(plan)
    except BaseException:
        workdir.remove()
        raise
    return plan


def check_continued_images(p: dict, grid: spectral.CubeGrid) -> None:
    """The earlier call's images a continued clean reads are on this call's grid: the same
    shape, channels, pixel size and phase centre (what serial tclean would otherwise fail on,
    or silently regrid)."""
    from pclean import casa

    ia = casa.tools().image()
    path = f"{p['imagename']}.psf"
    ia.open(path)
    try:
        shape = [int(n) for n in ia.shape()]
        csys = ia.coordsys().torecord()
    finally:
        ia.close()
    want = grid.csys
    nx, ny = (list(np.atleast_1d(p["imsize"])) * 2)[:2]
    differs = []
    if shape[0] != int(nx) or shape[1] != int(ny) or shape[-1] != grid.nchan:
        differs.append(f"shape {shape}, this call's cube {int(nx)} x {int(ny)} x "
                       f"{grid.nchan} channels")
    else:
        freqs, _ = spectral.spectral_freqs(csys, grid.nchan)
        if not np.allclose(freqs, grid.freqs_hz, rtol=1e-10, atol=0):
            differs.append("its channel frequencies")
        for key in ("crval", "cdelt"):
            if not np.allclose(csys["direction0"][key], want["direction0"][key], rtol=1e-10,
                               atol=0):
                differs.append("its phase centre" if key == "crval" else "its cell size")
        if list(csys["stokes1"]["stokes"]) != list(want["stokes1"]["stokes"]):
            differs.append(f"its Stokes planes {list(csys['stokes1']['stokes'])}")
    if differs:
        raise ParameterError(f"calcres=False: {path} is not on this call's grid ("
                             + "; ".join(differs) + "): continue with the earlier call's "
                             "imaging parameters")


def with_chunks(plan: Plan, nworkers: int, memory_limit_mb: float | None = None) -> Plan:
    """The plan with its chunks: each a channel range of the full cube's grid (see
    ``spectral``), sized for ``nworkers`` live workers of ``memory_limit_mb``."""
    p, grid = plan.params, plan.grid
    try:
        # no 1-channel chunks where they would differ (refusals.check_grid refuses them asked)
        wide = refusals.nsigma_per_stokes_needs_wide_chunks(p, grid)
        ranges = chunking.sizes(grid.nchan, nworkers, p["chanchunk"],
                                chunking.plane_pixels(p["imsize"]), memory_limit_mb,
                                min_size=2 if wide else 1)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    chunks = chunking.chunk_specs(ranges, plan.workdir, plan.records, plan.cubewide,
                                  grid.freqs_hz, plan.has_model, bool(p["restoration"]),
                                  plan.cubewide.get("model_halo", 2),
                                  plan.cubewide.get("grid_starts"),
                                  plan.cubewide.get("interp_anchors", ()),
                                  plan.cubewide.get("data_halo", 0),
                                  plan.cubewide.get("low_edges", ()))
    if plan.continues:
        chunks = [dataclasses.replace(c, continues=True) for c in chunks]
    return dataclasses.replace(plan, chunks=tuple(chunks))
