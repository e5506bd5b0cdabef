"""The coordinator's loop: drive every chunk through tclean's sequence of steps together.

Same order as casatasks' task_tclean with PySynthesisImager: psf (+pb), the first major cycle
(residual), then while the cube-wide iteration control says go: minor cycle on every chunk with
the same controls, major cycle on every chunk. Each stretch of steps is sent to all chunk actors
at once and waited for, so channels never drift apart in cycle count.
"""
from __future__ import annotations

import time

from pclean import casaenv, chunking
from pclean.iteration import CubeIterationControl
from pclean.workers import ChunkImager


class ChunkSet:
    """The chunk actors of one run, called together."""

    def __init__(self, client, specs, workers: list[str]):
        placement = chunking.assign([(s.img_first, s.img_nchan) for s in specs], len(workers),
                                    specs[0].npix)
        futures = [None] * len(specs)
        for w, chunk_ids in enumerate(placement):
            for i in chunk_ids:
                futures[i] = client.submit(ChunkImager, specs[i], actor=True, pure=False,
                                           workers=[workers[w]], allow_other_workers=False)
        self.specs = specs
        self.actors = [f.result() for f in futures]

    def run(self, *steps: tuple) -> list[list]:
        """Run the ``(method, *args)`` steps, in order, on every chunk at once (one actor call
        each); for each step, the list of the chunks' results."""
        futures = [actor.run(list(steps)) for actor in self.actors]
        per_chunk = []
        for spec, fut in zip(self.specs, futures):
            try:
                per_chunk.append(fut.result())
            except Exception as exc:
                raise RuntimeError(f"{spec.name} failed in {exc}"
                                   f" -- CASA logs in {spec.logdir}") from exc
        return [list(step) for step in zip(*per_chunk)]

    def close(self) -> None:
        """Close every chunk after a failure: the first error is the one to report."""
        try:
            self.run(("close",))
        except Exception:
            pass


def common_beam(per_plane: list[list[float]]) -> list[str]:
    """The cube's common restoring beam, computed by casacore's ImageBeamSet as tclean does."""
    ct = casaenv.tools()
    ia = ct.image()
    ia.fromshape("", [1, 1, 1, len(per_plane)])
    try:
        for c, (bmaj, bmin, pa) in enumerate(per_plane):
            ia.setrestoringbeam(major=f"{bmaj!r}arcsec", minor=f"{bmin!r}arcsec", pa=f"{pa!r}deg",
                                channel=c, polarization=0)
        beam = ia.commonbeam()
    finally:
        ia.close()
    qa = ct.quanta()
    return [f"{qa.convert(beam['major'], 'arcsec')['value']!r}arcsec",
            f"{qa.convert(beam['minor'], 'arcsec')['value']!r}arcsec",
            f"{qa.convert(beam['pa'], 'deg')['value']!r}deg"]


def run(plan, client, workers: list[str], timings: dict) -> tuple[dict, list]:
    """Image every chunk of ``plan``; return tclean's summary dict and each chunk's status.
    The chunks' tools are closed on return, so their images can be gathered."""
    t0 = time.time()
    chunks = ChunkSet(client, plan.chunks, workers)
    timings["worker_startup"] = time.time() - t0
    t0 = time.time()
    try:
        summary, status = _cycles(plan, chunks)
        timings["imaging"] = time.time() - t0
    except BaseException:
        chunks.close()
        raise
    return summary, status


def _cycles(plan, chunks: ChunkSet) -> tuple[dict, list]:
    """tclean's sequence. The chunks wait for the coordinator only where it decides something
    from their merged records: before each minor cycle (convergence and the cycle threshold)
    and before each major cycle (which chunks iterated; is it the last cycle). The
    coordinator's own bookkeeping (the iterbot) sees the records in tclean's order."""
    p = plan.params
    usemask = plan.imager.getDecPars()["0"]["usemask"]
    niter = int(p["niter"])
    summary = {}
    control = None
    if niter > 0:
        control = CubeIterationControl(plan.imager.getIterPars(), plan.chunks, plan.grid.nchan,
                                       p["fullsummary"])
    try:
        controls = control.major_controls(usemask) if control else {"lastcycle": True,
                                                                      "usemask": usemask}
        if control:
            # tclean: psf, pb, first major cycle, then hasConverged, updateMask, hasConverged
            psf, _pb, _major, init_first, _mask, init = chunks.run(
                ("make_psf",), ("make_pb",), ("major_cycle", controls), ("init_minor",),
                ("setup_mask",), ("init_minor",))
            control.end_major(clean_cycle=False)
            control.converged(init_first)
            converged = control.converged(init)
            while not converged:
                minor = control.minor_controls()
                did = control.merge_minor(chunks.run(("minor_cycle", minor))[0])
                if did:
                    major = control.major_controls(usemask)
                    _major, _mask, init = chunks.run(("major_cycle", major), ("setup_mask",),
                                                     ("init_minor",))
                    control.end_major(clean_cycle=True)
                else:
                    _mask, init = chunks.run(("setup_mask",), ("init_minor",))
                converged = control.converged(init) or not did
            summary = control.summary()
        else:
            psf, _pb, _major = chunks.run(("make_psf",), ("make_pb",), ("major_cycle", controls))
    finally:
        if control:
            control.done()
    final = [("finish",), ("status",), ("close",)]
    if p["restoration"]:
        beam = None
        if plan.common_beam:
            beam = common_beam([b for rec in psf for b in rec["beams"]])
        final.insert(1, ("restore", beam, bool(p["pbcor"])))
    return summary, chunks.run(*final)[-2]
