"""What runs on a Dask worker: one sub-cube (chunk) in, CASA image products out.

A :class:`ChunkImager` is created as a Dask actor and holds a chunk's casatools synthesisimager,
synthesisnormalizer and synthesisdeconvolver across major/minor cycles, exactly as serial tclean
(casatasks' PySynthesisImager) drives one imager for the whole cube. It owns no iteration
control: the coordinator sends the cube-wide minor-cycle controls and merges what comes back.

All its state that matters lives on disk in the chunk's directory (psf, residual, model,
mask) and in its :class:`ChunkSpec`, so a chunk lost with its worker could be rebuilt from them
(CASA reopens existing images with restart=True). Automatic rebuilding is not implemented yet:
a lost worker fails the run with the chunk named, and the chunk directory is kept.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

import numpy as np

from pclean import casaenv, chunking
from pclean.beams import beam_table


@dataclass
class ChunkSpec:
    """Everything a worker needs for its chunk: full-cube values are computed by params."""

    index: int
    first: int  # first full-cube channel of this chunk
    nchan: int  # its channels in the final cube
    workdir: str
    selpars: dict
    impars: dict
    gridpars: dict
    normpars: dict
    weightpars: dict
    decpars: dict
    expected_freqs_hz: np.ndarray
    deconvolve: bool  # niter > 0 or restoration
    fracbw: float | None = None  # full-cube fracBW for briggsbwtaper
    weight_density: str | None = None  # shared density image when perchanweightdensity=False
    # Halo channels: neighbouring cube channels a chunk images too, never counted as its own.
    # CASA quirks behind them: (1) an image of ONE channel is gridded without frequency
    # interpolation (FTMachine::interpolateFrequencyTogrid), so a 1-channel chunk maps data to
    # its channel differently from the same channel inside a cube; (2) predicting model
    # visibilities interpolates between adjacent image channels, so a chunk's edge channel
    # needs its neighbour's model (4.5e-5 of peak without it, next to an empty channel). Halo
    # planes are deconvolved under the same controls as their twins in the neighbouring chunk,
    # dropped at gather, and their share of the iteration records removed by the coordinator.
    halo_before: int = 0
    halo_after: int = 0

    @property
    def img_first(self) -> int:
        return self.first - self.halo_before

    @property
    def img_nchan(self) -> int:
        return self.nchan + self.halo_before + self.halo_after

    @property
    def local(self) -> slice:
        """This chunk's own channels within its image."""
        return slice(self.halo_before, self.halo_before + self.nchan)

    @property
    def halo_local(self) -> list[int]:
        return ([0] if self.halo_before else []) + ([self.local.stop] if self.halo_after else [])

    @property
    def imagename(self) -> str:
        return self.impars["imagename"]

    @property
    def npix(self) -> int:
        return chunking.plane_pixels(self.impars["imsize"])

    @property
    def own_imagename(self) -> str:
        """Prefix of the products holding only this chunk's channels (a virtual gather's)."""
        return self.imagename + "-own" if self.halo_local else self.imagename

    @property
    def logdir(self) -> str:
        return os.path.join(os.path.dirname(self.workdir), "logs")


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
        self.si = ct.synthesisimager()
        for key in sorted(spec.selpars):
            self.si.selectdata(spec.selpars[key])
        self.si.defineimage(spec.impars, spec.gridpars)
        from pclean import spectral

        spectral.verify_chunk(self.si.getcsys()["coordsys"], spec.img_nchan,
                              spec.expected_freqs_hz)
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

    # -- imaging steps (tclean's order) ----------------------------------------------------
    @_timed
    def make_psf(self) -> dict:
        from pclean import fracbw

        before = fracbw.substitutions() if self.spec.fracbw is not None else 0
        self.si.makepsf()
        if self.sd is not None:
            self.sd.checkrestoringbeam()
        if self.spec.fracbw is not None:
            self.fracbw_substitutions = fracbw.check_applied(before, self.spec.fracbw,
                                                            self.si.setweighting)
        return {"beams": self.beams("psf")[self.spec.local]}

    @_timed
    def make_pb(self) -> None:
        # the standard gridder makes the cube's pb with the psf; the normalizer scales it
        if not ("stand" in self.spec.gridpars["gridder"]):
            self.si.makepb()
        self.pn.normalizeprimarybeam()

    @_timed
    def major_cycle(self, controls: dict) -> None:
        self.si.executemajorcycle(controls=controls)

    @_timed
    def init_minor(self) -> dict:
        return self.sd.initminorcycle()

    @_timed
    def setup_mask(self) -> bool:
        return bool(self.sd.setupmask())

    @_timed
    def minor_cycle(self, controls: dict) -> dict:
        return self.sd.executeminorcycle(iterbotrecord=controls)

    @_timed
    def restore(self, restoringbeam=None, pbcor: bool = False) -> None:
        sd = self.sd
        if restoringbeam is not None:
            # a cube-wide beam (restoringbeam='common') computed by the coordinator
            sd.done()
            decpars = dict(self.spec.decpars, restoringbeam=restoringbeam)
            sd = self.sd = casaenv.tools().synthesisdeconvolver()
            sd.setupdeconvolution(decpars=decpars)
        sd.restore()
        if pbcor:
            sd.pbcor()

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

    def beams(self, product: str) -> list:
        """Per-plane restoring beams of one product, [[bmaj", bmin", pa_deg], ...] by channel."""
        ia = casaenv.tools().image()
        ia.open(f"{self.spec.imagename}.{product}")
        try:
            info = ia.restoringbeam()
        finally:
            ia.close()
        # Stokes 0 of every plane of the chunk's image
        return beam_table(info, 1, self.spec.img_nchan)[:, 0, :].T.tolist()

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
