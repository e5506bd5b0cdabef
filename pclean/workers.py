"""What runs on a Dask worker: one sub-cube (chunk) in, CASA image products out.

A :class:`ChunkImager` is created as a Dask actor and holds a chunk's casatools synthesisimager,
synthesisnormalizer and synthesisdeconvolver across major/minor cycles, exactly as serial tclean
(casatasks' PySynthesisImager) drives one imager for the whole cube. It owns no iteration
control: the coordinator sends the cube-wide minor-cycle controls and merges what comes back.

The imager grids the chunk's sub-cube of the full cube's grid (its own channels and, when
deconvolving, up to two neighbour channels each side whose model planes its own channels'
prediction needs); the deconvolver works on images of the chunk's own channels only (see
:class:`pclean.chunking.ChunkSpec` and :mod:`pclean.planes`).

All its state that matters lives on disk in the chunk's directory (psf, residual, model,
mask) and in its ChunkSpec, so a chunk lost with its worker could be rebuilt from them
(CASA reopens existing images with restart=True). Automatic rebuilding is not implemented yet:
a lost worker fails the run with the chunk named, and the chunk directory is kept.
"""
from __future__ import annotations

import functools
import os
import threading
import time

from pclean import casaenv, planes, psfbeams, spectral
from pclean.chunking import ChunkSpec

__all__ = ["ChunkImager", "ChunkSpec", "peak_rss_mb"]


_PSF_LOG_LOCK = threading.Lock()


def _timed(method):
    """Add the time spent in an imaging step to the chunk's ``busy`` record."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.busy[method.__name__] = self.busy.get(method.__name__, 0.0) + (
                time.perf_counter() - t0)

    return wrapper


class ChunkImager:
    """One chunk's CASA imaging tools, driven by the coordinator (a Dask actor)."""

    def __init__(self, spec: ChunkSpec):
        # one CASA log per worker process (several chunks may share a worker)
        casaenv.init_worker(os.path.join(spec.logdir, f"casa-worker-{os.getpid()}.log"))
        self.spec = spec
        ct = casaenv.tools()
        os.makedirs(spec.workdir, exist_ok=True)
        # CASA quirk: BriggsCubeWeightor writes a transient table IMAGING_WEIGHT_<rows>_<times>_
        # <weighting>... into the *current directory*, named without the channels; two workers
        # in one directory collide on it ("RegularFile::move error ... table.dat_tmp"). Each
        # worker process works in a directory of its own (all paths we pass are absolute).
        own = os.path.join(os.path.dirname(spec.workdir), f"worker-{os.getpid()}")
        os.makedirs(own, exist_ok=True)
        self._previous_cwd = os.getcwd()
        os.chdir(own)
        impars = spec.grid_impars(self._define_cube())
        self.si = ct.synthesisimager()
        for key in sorted(spec.selpars):
            self.si.selectdata(spec.selpars[key])
        self.si.defineimage(impars, spec.gridpars)
        spectral.verify_chunk(self.si.getcsys()["coordsys"], spec.img_nchan,
                              spec.expected_freqs_hz, spec.name)
        self.si.normalizerinfo(spec.normpars)
        self.pn = ct.synthesisnormalizer()
        self.pn.setupnormalizer(normpars=spec.normpars)
        self._set_weighting()
        self.sd = None
        if spec.deconvolve:
            self.sd = ct.synthesisdeconvolver()
            self.sd.setupdeconvolution(decpars=spec.decpars)
        self.fracbw_substitutions = None
        self.busy = {}  # seconds spent in each imaging step (load balance, benchmarks)

    def _define_cube(self) -> dict:
        """The full cube's coordinate system, defined here as serial tclean defines it.

        CASA quirk: frame conversions depend on what the process converted before (casacore
        caches nutation and precession per epoch), so the same definition in two processes can
        differ in the last bits: measured, a grid from a process that had just simulated an MS
        was 1.7e-6 Hz off at 1.4 GHz, and a data channel right on a channel edge then fell into
        the other channel of the chunks (which map data in fresh worker processes; channel 0's
        sumwt 0 against 273). A chunk defines the cube itself first, as serial does before it
        grids, and cuts its channels from that."""
        si = casaenv.tools().synthesisimager()
        try:
            for key in sorted(self.spec.selpars):
                si.selectdata(self.spec.selpars[key])
            si.defineimage(dict(self.spec.cube_impars, imagename=self.spec.grid_imagename),
                           self.spec.gridpars)
            return si.getcsys()["coordsys"]
        finally:
            si.done()

    # -- weighting -------------------------------------------------------------------------
    def _set_weighting(self):
        spec = self.spec
        weightpars = dict(spec.weightpars)
        from pclean import fracbw

        if spec.fracbw is not None:
            if fracbw.accepts_fracbw(self.si.setweighting):
                weightpars["fracbw"] = spec.fracbw  # a casatools rebuilt with patches/
            else:
                fracbw.set_value(spec.fracbw)  # stock wheel: the shim substitutes it
        elif fracbw.loaded():
            fracbw.set_value(0.0)  # a reused worker: no value left over from an earlier run
        self.si.setweighting(**weightpars)
        if spec.weight_density:
            # perchanweightdensity=False: one density for the whole cube, made by the coordinator
            self.si.setweightdensity(spec.weight_density)

    # -- the gridded sub-cube and the chunk's own images ------------------------------------
    def _own(self, product: str) -> None:
        """The chunk's own channels of a gridded product, for its deconvolver and the gather."""
        spec = self.spec
        if spec.has_halo:
            planes.copy_planes(f"{spec.grid_imagename}.{product}", spec.halo_before, spec.nchan,
                               f"{spec.imagename}.{product}")

    def _grid_model(self) -> None:
        """Before a major cycle: the gridded sub-cube's model is the chunk's own model planes
        with its neighbours' (as they left them after the last minor cycle) around them."""
        spec = self.spec
        own = f"{spec.imagename}.model"
        if not spec.has_halo or not os.path.isdir(own):
            return
        grid = f"{spec.grid_imagename}.model"
        planes.ensure_like(grid, f"{spec.grid_imagename}.psf", unit="Jy/pixel")
        planes.put_planes(grid, spec.halo_before, planes.read_planes(own))
        for plane, path in spec.halo_inputs:
            if os.path.exists(path):  # a neighbour without a model yet has zeros there
                planes.put_planes(grid, plane, planes.load(path))

    def _share_model(self) -> None:
        """After a minor cycle: leave the model planes the neighbours' prediction needs."""
        spec = self.spec
        own = f"{spec.imagename}.model"
        if not spec.halo_outputs or not os.path.isdir(own):
            return
        for plane, path in spec.halo_outputs:
            planes.save(path, planes.read_planes(own, plane, 1))

    # -- imaging steps (tclean's order) ----------------------------------------------------
    @_timed
    def make_psf(self) -> dict:
        from pclean import fracbw

        before = fracbw.substitutions() if self.spec.fracbw is not None else 0
        log = casaenv.casalog().logfile()
        with _PSF_LOG_LOCK:  # this chunk's fits alone in the log window read below
            start = os.path.getsize(log) if os.path.exists(log) else 0
            self.si.makepsf()
            casaenv.casalog().post(f"pclean: {self.spec.name} psf made")  # flushes the log
            with open(log, errors="replace") as f:
                f.seek(start)
                unfitted = psfbeams.unfitted_planes(f.read(), self.spec.img_nchan)
        self._own("psf")
        self._own("sumwt")
        if self.sd is not None:
            self.sd.checkrestoringbeam()
        if self.spec.fracbw is not None:
            self.fracbw_substitutions = fracbw.check_applied(before, self.spec.fracbw,
                                                            self.si.setweighting)
        valid = [c + self.spec.halo_before not in unfitted for c in range(self.spec.nchan)]
        ia = casaenv.tools().image()
        ia.open(f"{self.spec.grid_imagename}.psf")
        memreq = float(ia.miscinfo().get("memreq", 0.0))  # CASA's estimate for this sub-cube
        ia.close()
        return {"beams": psfbeams.read(f"{self.spec.imagename}.psf"), "valid": valid,
                "memreq_gb_per_chan": memreq / self.spec.img_nchan}

    def set_psf_beams(self, beams: list[dict] | None) -> None:
        """The cube-wide fill of unfitted psf beams (see psfbeams), before the deconvolver
        first reads them."""
        if beams is not None:
            psfbeams.write(f"{self.spec.imagename}.psf", beams)

    @_timed
    def make_pb(self) -> None:
        # the standard gridder makes the cube's pb with the psf; the normalizer scales it
        if "stand" not in self.spec.gridpars["gridder"]:
            self.si.makepb()
        self.pn.normalizeprimarybeam()
        self._own("pb")

    @_timed
    def major_cycle(self, controls: dict) -> None:
        self._grid_model()
        with casaenv.omp_threads_set(self.spec.cycle_threads):
            self.si.executemajorcycle(controls=controls)
        self._own("residual")

    @_timed
    def init_minor(self) -> dict:
        return self.sd.initminorcycle()

    @_timed
    def setup_mask(self) -> bool:
        return bool(self.sd.setupmask())

    @_timed
    def minor_cycle(self, controls: dict) -> dict:
        with casaenv.omp_threads_set(self.spec.cycle_threads):
            record = self.sd.executeminorcycle(iterbotrecord=controls)
        if record["iterdone"] > 0 or not all(os.path.exists(p) for _, p in
                                             self.spec.halo_outputs):
            self._share_model()
        return record

    @_timed
    def restore(self, restoringbeam=None, pbcor: bool = False) -> None:
        sd = self.sd
        if restoringbeam is not None:
            # a cube-wide beam (restoringbeam='common') computed by the coordinator
            sd.done()
            # mask='': the chunk's mask exists; CASA refuses a mask given again beside it
            decpars = dict(self.spec.decpars, restoringbeam=restoringbeam, mask="")
            sd = self.sd = casaenv.tools().synthesisdeconvolver()
            sd.setupdeconvolution(decpars=decpars)
        sd.restore()
        if pbcor:
            sd.pbcor()

    def finish(self) -> None:
        """The sums of weights after the last major cycle, in the chunk's own images; the
        model's image records as serial's."""
        self._own("sumwt")
        model, sumwt = f"{self.spec.imagename}.model", f"{self.spec.imagename}.sumwt"
        if os.path.isdir(model):
            # CASA quirk: a 1-channel deconvolver makes its model without the imager's
            # 'useweightimage' miscinfo key, which serial's model (and every other chunk's,
            # made by a cube deconvolver) has
            planes.add_miscinfo(model, planes.miscinfo(sumwt))

    def run(self, steps: list[tuple]) -> list:
        """Run ``(method, *args)`` steps in order; their results. One actor call for a whole
        stretch of tclean's sequence that needs nothing from the coordinator in between, so
        the coordinator waits for the slowest chunk once per stretch, not once per step."""
        results = []
        for name, *args in steps:
            try:
                results.append(getattr(self, name)(*args))
            except Exception as exc:
                raise RuntimeError(f"{name}: {exc}") from exc
        return results

    def status(self) -> dict:
        return {"pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                "fracbw_substitutions": self.fracbw_substitutions,
                "peak_rss_mb": peak_rss_mb(), "busy_s": dict(self.busy)}

    def close(self) -> None:
        for tool in (self.sd, self.pn, self.si):
            if tool is not None:
                tool.done()
        self.sd = self.pn = self.si = None
        # the run's directories are removed after gathering: leave the worker somewhere that
        # stays (a reused worker in a deleted cwd fails every later casacore call)
        import tempfile

        prev = self._previous_cwd
        workroot = os.path.dirname(self.spec.workdir)
        os.chdir(prev if os.path.isdir(prev) and not prev.startswith(workroot)
                 else tempfile.gettempdir())


def peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM). Not getrusage's ru_maxrss: Linux keeps
    that across exec, so a process forked from a big parent reports the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource  # not Linux

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
