"""What runs on a Dask worker: one sub-cube (chunk) in, CASA image products out.

A :class:`ChunkImager` is created as a Dask actor and holds a chunk's casatools synthesisimager,
and a synthesisnormalizer and synthesisdeconvolver per field, across major/minor cycles, exactly
as serial tclean (casatasks' PySynthesisImager) drives one imager for the whole cube. It
implements the chunk steps (``steps.ChunkSteps``) and owns no iteration control: the
coordinator sends the cube-wide minor-cycle controls and merges what comes back.

The imager grids the chunk's sub-cube of the full cube's grid (its own channels and, when
deconvolving, the neighbour channels each side whose model planes its own channels' prediction
needs); the deconvolver works on images of the chunk's own channels only (see
:class:`pclean.params.chunking.ChunkSpec` and :mod:`pclean.workers.planes`). Cube-wide values
are applied through their providers' chunk hooks (:mod:`pclean.params.cubewide`).

Its state is a function of its ChunkSpec and the calls it has received, and it is on disk
after each stretch of calls: a new actor given ``resume`` (``run.checkpoint.chunk_state``)
continues from there, after rolling back what a stretch in progress had changed (``undo``).
That is how a lost chunk is rebuilt and an interrupted run resumed; every neighbour's halo
planes are read as they were at each cycle (they are kept by version).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time

from pclean import casa
from pclean.casa import frames
from pclean.params import resume as resume_lock
from pclean.params import spectral
from pclean.params.chunking import ChunkSpec
from pclean.params.cubewide import ChunkHooks
from pclean.params.gridders import family
from pclean.params.imager import full_imager
from pclean.workers import planes, psf, start
from pclean.workers.undo import Undo

__all__ = ["ChunkImager", "peak_rss_mb"]

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

    def __init__(self, spec: ChunkSpec, resume: dict | None = None):
        """``resume``: continue after the stretches a chunk's images have seen (see
        ``run.checkpoint.chunk_state``); None: a new chunk."""
        # one CASA log per worker process (several chunks may share a worker)
        casa.init_worker(os.path.join(spec.logdir, f"casa-worker-{os.getpid()}.log"))
        self.spec = spec
        # held while the chunk lives: a new call against the work directory waits for it
        self._lock = resume_lock.hold_shared(spec.workdir.root)
        self.hooks = ChunkHooks(spec.cubewide)
        self.busy = {}  # seconds spent in each imaging step (load balance, benchmarks)
        self.report = {}  # what cube-wide values report from the chunk
        self.minor_done = 0  # minor cycles completed: the version of the halo planes
        self.stretch = 0  # stretches of calls begun
        self.undo = Undo(spec.dir, self.busy)
        resumed = bool(resume and resume["stretches"])
        if resume is not None and not resumed:
            import shutil

            shutil.rmtree(spec.dir, ignore_errors=True)  # as far as a lost actor had got
        elif resumed:
            self._roll_back(resume)
        ct = casa.tools()
        os.makedirs(spec.dir, exist_ok=True)
        if not resumed:
            start.images(spec)
        # CASA quirk: BriggsCubeWeightor writes a transient table IMAGING_WEIGHT_<rows>_<times>_
        # <weighting>... into the *current directory*, named without the channels; two workers
        # in one directory collide on it ("RegularFile::move error ... table.dat_tmp"). Each
        # worker process works in a directory of its own (all paths we pass are absolute).
        own = spec.workdir.worker_cwd(os.getpid())
        os.makedirs(own, exist_ok=True)
        self._previous_cwd = os.getcwd()
        os.chdir(own)
        rec = spec.records
        # as a fresh serial tclean process: nothing cached from this worker's earlier chunks
        frames.start_afresh([rec.selpars[k]["msname"] for k in sorted(rec.selpars)])
        csys = {f: self._define_cube(f) for f in spec.fields}
        self.si = ct.synthesisimager()
        for key in sorted(rec.selpars):
            self.si.selectdata(rec.selpars[key])
        for f in spec.fields:
            self.si.defineimage(spec.grid_impars(f, csys[f], spectral.cut_csys),
                                self.hooks.gridpars(rec.gridpars[f]))
            if f == "0":  # the imager reports the main field's coordinates
                spectral.verify_chunk(self.si.getcsys()["coordsys"], spec.img_nchan,
                                      spec.expected_freqs_hz, spec.name)
        self.si.normalizerinfo(spec.normpars("0"))  # as PySynthesisImager: the main field's
        self.pn = {}
        for f in spec.fields:
            self.pn[f] = ct.synthesisnormalizer()
            self.pn[f].setupnormalizer(normpars=spec.normpars(f))
        self.hooks.set_weighting(self.si, rec.weightpars)
        self.sd = {}
        if spec.deconvolve:
            for f in spec.fields:
                decpars = spec.decpars(f)
                if (resumed or spec.continues) and os.path.isdir(f"{spec.imagename(f)}.mask"):
                    # CASA refuses a mask given again beside the chunk's existing one
                    decpars = dict(decpars, mask="")
                self.sd[f] = ct.synthesisdeconvolver()
                self.sd[f].setupdeconvolution(decpars=decpars)
        if resumed:
            if resume["psf_made"]:  # a continued clean's deconvolvers never saw a psf made
                for sd in self.sd.values():
                    sd.checkrestoringbeam()  # as make_psf leaves the deconvolver
            if resume["reinit"]:  # the minor cycle that follows reads what these leave
                # in tclean's order (hasConverged, updateMask, hasConverged): a deconvolver
                # that has not had initminorcycle before setupmask refuses the minor cycle
                # ("Initminor Cycle has not been called yet", measured on a continued clean)
                self.init_minor()
                self.setup_mask()
                self.init_minor()

    def _roll_back(self, resume: dict) -> None:
        """The chunk's images as they were after ``resume["stretches"]`` stretches: undo the
        one in progress and drop the halo planes of its minor cycle (they are made again)."""
        self.undo.roll_back(resume["stretches"])
        if self.spec.has_halo:
            # the gridded sub-cube's model is made again before every major cycle (own and
            # neighbour planes); a worker killed while creating it leaves a table CASA cannot
            # open (measured: a SLURM job scancelled in a major cycle, "Unable to open image
            # ...-grid.model" in the rebuilt chunk)
            import shutil

            for f in self.spec.fields:
                shutil.rmtree(f"{self.spec.grid_imagename(f)}.model", ignore_errors=True)
        self.stretch = resume["stretches"]
        self.minor_done = resume["minor_done"]
        self.report = dict(resume["report"])
        for _f, _plane, path in self.spec.halo_outputs:
            planes.drop_after(path, self.minor_done)

    def _define_cube(self, f: str) -> dict:
        """Field ``f``'s full-cube coordinate system, defined here as serial tclean defines it
        (after ``frames.start_afresh``): a chunk defines the cube itself first, as serial does
        before it grids, and cuts its channels from that (see ``pclean.casa.frames``)."""
        rec = self.spec.records
        one = dataclasses.replace(rec, impars={"0": self.spec.cube_impars(f)},
                                  gridpars={"0": self.hooks.gridpars(rec.gridpars[f])})
        with full_imager(one) as si:
            return si.getcsys()["coordsys"]

    # -- the gridded sub-cube and the chunk's own images ------------------------------------
    def _own(self, product: str) -> None:
        """The chunk's own channels of a gridded product, for its deconvolver and the gather."""
        spec = self.spec
        if spec.has_halo:
            for f in spec.fields:
                planes.copy_planes(f"{spec.grid_imagename(f)}.{product}", spec.halo_before,
                                   spec.nchan, f"{spec.imagename(f)}.{product}")

    def _grid_model(self) -> None:
        """Before a major cycle: the gridded sub-cube's model is the chunk's own model planes
        with its neighbours' (as they left them after the last minor cycle) around them."""
        spec = self.spec
        if not spec.has_halo:
            return
        for f in spec.fields:
            own = f"{spec.imagename(f)}.model"
            if not os.path.isdir(own):
                continue
            grid = f"{spec.grid_imagename(f)}.model"
            planes.ensure_like(grid, f"{spec.grid_imagename(f)}.psf", unit="Jy/pixel")
            planes.put_planes(grid, spec.halo_before, planes.read_planes(own))
            for field, plane, path in spec.halo_inputs:
                if field != f:
                    continue
                found = planes.latest(path, self.minor_done)
                if found:
                    planes.put_planes(grid, plane, planes.load(found))
                elif spec.start_model and f == "0":  # the neighbour's model is still it
                    planes.put_planes(grid, plane, planes.read_planes(
                        spec.start_model, spec.img_first + plane, 1))
                # else no neighbour model yet: zeros

    def _share_model(self, cycle: int) -> None:
        """After minor cycle ``cycle``: leave the model planes the neighbours' prediction
        needs (as that cycle's version)."""
        spec = self.spec
        for f, plane, path in spec.halo_outputs:
            own = f"{spec.imagename(f)}.model"
            if os.path.isdir(own):
                planes.save(planes.version(path, cycle), planes.read_planes(own, plane, 1))

    # -- imaging steps (tclean's order) ----------------------------------------------------
    @_timed
    def make_psf(self) -> dict:
        spec = self.spec
        before = self.hooks.before_psf()
        log = casa.casalog().logfile()
        with _PSF_LOG_LOCK:  # this chunk's fits alone in the log window read below
            start = os.path.getsize(log) if os.path.exists(log) else 0
            self.si.makepsf()
            casa.casalog().post(f"pclean: {spec.name} psf made")  # flushes the log
            with open(log, errors="replace") as f:
                f.seek(start)
                unfitted = psf.unfitted_planes(f.read(), spec.img_nchan)
        self._own("psf")
        self._own("sumwt")
        for sd in self.sd.values():
            sd.checkrestoringbeam()
        self.report.update(self.hooks.psf_made(before, self.si))
        valid = [c + spec.halo_before not in unfitted for c in range(spec.nchan)]
        ia = casa.tools().image()
        ia.open(f"{spec.grid_imagename('0')}.psf")
        memreq = float(ia.miscinfo().get("memreq", 0.0))  # CASA's estimate for this sub-cube
        ia.close()
        # CASA fits (and logs) the main field's psf; an outlier field's beams are its own
        return {"beams": {f: psf.read(f"{spec.imagename(f)}.psf") for f in spec.fields},
                "valid": {f: valid for f in spec.fields},
                "memreq_gb_per_chan": memreq / spec.img_nchan, "report": dict(self.report)}

    def read_psf(self) -> dict:
        spec = self.spec
        ia = casa.tools().image()
        ia.open(f"{spec.imagename('0')}.psf")
        memreq = float(ia.miscinfo().get("memreq", 0.0))  # the earlier call's, for the cube
        ia.close()
        return {"beams": {f: psf.read(f"{spec.imagename(f)}.psf") for f in spec.fields},
                "valid": {f: [True] * spec.nchan for f in spec.fields},
                "memreq_gb_per_chan": memreq / spec.cube_nchan, "report": {}}

    def set_psf_beams(self, beams: dict) -> None:
        """The cube-wide fill of unfitted psf beams (see run.psfbeams), before the deconvolver
        first reads them."""
        for f, fill in (beams or {}).items():
            if fill is not None:
                psf.write(f"{self.spec.imagename(f)}.psf", fill)

    @_timed
    def make_pb(self) -> None:
        # the standard gridder makes the cube's pb with the psf; the normalizer scales it
        if not family(self.spec.records.gridpars["0"]["gridder"]).pb_with_psf:
            self.si.makepb()
        for pn in self.pn.values():
            pn.normalizeprimarybeam()
        self._own("pb")

    @_timed
    def major_cycle(self, controls: dict) -> None:
        self._grid_model()
        with casa.omp_threads_set(self.hooks.cycle_threads()):
            self.si.executemajorcycle(controls=controls)
        self._own("residual")

    @_timed
    def init_minor(self) -> dict:
        return {f: sd.initminorcycle() for f, sd in self.sd.items()}

    @_timed
    def setup_mask(self) -> dict:
        for f in self.sd:
            mask = f"{self.spec.imagename(f)}.mask"
            if not os.path.isdir(mask):
                # the first setup_mask makes the mask; user and pb masks are made only then
                self.undo.keep(self.stretch, mask)
        return {f: bool(sd.setupmask()) for f, sd in self.sd.items()}

    @_timed
    def minor_cycle(self, controls: dict) -> dict:
        for f in self.sd:  # CASA's minor cycle writes the model and the residual it leaves
            for product in ("model", "residual"):
                self.undo.keep(self.stretch, f"{self.spec.imagename(f)}.{product}")
        with casa.omp_threads_set(self.hooks.cycle_threads()):
            records = {f: sd.executeminorcycle(iterbotrecord=controls)
                       for f, sd in self.sd.items()}
        cycle = self.minor_done + 1
        if any(r["iterdone"] > 0 for r in records.values()) or not all(
                planes.latest(p, cycle) for _f, _plane, p in self.spec.halo_outputs):
            self._share_model(cycle)
        self.minor_done = cycle
        return records

    @_timed
    def restore(self, beams: dict | None = None, pbcor: bool = False,
                common_planes: dict | None = None) -> None:
        """``common_planes``: {field: the own channel whose Stokes-0 psf beam serial's restore
        replaces by the common beam (run.psfbeams.max_area_channel), or None}."""
        for f in list(self.sd):
            beam = (beams or {}).get(f)
            plane = (common_planes or {}).get(f) if beam is not None else None
            previous = None
            psf_path = f"{self.spec.imagename(f)}.psf"
            for product in ("image", "image.pbcor") + (("psf",) if plane is not None else ()):
                self.undo.keep(self.stretch, f"{self.spec.imagename(f)}.{product}")
            if beam is not None:
                # a cube-wide beam (restoringbeam='common') computed by the coordinator
                self.sd[f].done()
                if plane is not None:  # as serial's getCommonBeam leaves it (see psfbeams)
                    previous = psf.set_plane(psf_path, plane, 0, psf.beam_record(beam))
                # mask='': the chunk's mask exists; CASA refuses a mask given again beside it
                decpars = dict(self.spec.decpars(f), restoringbeam=beam, mask="")
                self.sd[f] = casa.tools().synthesisdeconvolver()
                self.sd[f].setupdeconvolution(decpars=decpars)
            try:
                self.sd[f].restore()
            finally:
                if previous is not None:  # the psf product keeps the fitted (filled) beam
                    psf.set_plane(psf_path, plane, 0, previous)
        if pbcor:
            for sd in self.sd.values():
                sd.pbcor()

    def finish(self) -> None:
        """The sums of weights after the last major cycle, in the chunk's own images; the
        model's image records as serial's."""
        self._own("sumwt")
        for f in self.spec.fields:
            model, sumwt = f"{self.spec.imagename(f)}.model", f"{self.spec.imagename(f)}.sumwt"
            if os.path.isdir(model) and self.spec.cube_nchan > 1 and not self.spec.start_model:
                # CASA quirk: a 1-channel deconvolver makes its model without the imager's
                # 'useweightimage' miscinfo key, which serial's model of a multi-channel cube
                # (and every other chunk's, made by a cube deconvolver) has. Serial's model
                # of a 1-channel cube is made by that same 1-channel deconvolver (its
                # residual has one plane, so no executeCubeMinorCycle): it lacks the key too
                # (measured, seed 2013; with or without iterations). Serial's model made from
                # a start model is made by the imager's definition, before the key is set:
                # it has none either (measured)
                planes.add_miscinfo(model, planes.miscinfo(sumwt))

    def run(self, calls: list[tuple]) -> list:
        """Run ``(method, *args)`` steps in order; their results. One actor call for a whole
        stretch of tclean's sequence that needs nothing from the coordinator in between, so
        the coordinator waits for the slowest chunk once per stretch, not once per step."""
        self.stretch += 1
        self.undo.start(self.stretch)
        results = []
        for name, *args in calls:
            try:
                results.append(getattr(self, name)(*args))
            except Exception as exc:
                raise RuntimeError(f"{name}: {exc}") from exc
        return results

    def status(self) -> dict:
        return {"pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                "peak_rss_mb": peak_rss_mb(), "busy_s": dict(self.busy), **self.report}

    def close(self) -> None:
        for tool in [*self.sd.values(), *self.pn.values(), self.si]:
            if tool is not None:
                tool.done()
        self.sd, self.pn, self.si = {}, {}, None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        # the run's directories are removed after gathering: leave the worker somewhere that
        # stays (a reused worker in a deleted cwd fails every later casacore call)
        import tempfile

        prev = self._previous_cwd
        os.chdir(prev if os.path.isdir(prev) and not self.spec.workdir.contains(prev)
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
