"""The coordinator's loop: drive every chunk through tclean's sequence of steps together.

Same order as casatasks' task_tclean with PySynthesisImager: psf (+pb), the first major cycle
(residual), then while the cube-wide iteration control says go: minor cycle on every chunk with
the same controls, major cycle on every chunk. Each step is sent to all chunk actors at once
and waited for, so channels never drift apart in cycle count.
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

    def call(self, method: str, *args_per_chunk, **kwargs) -> list:
        """Call ``method`` on every chunk at once; positional args are per-chunk lists."""
        futures = []
        for i, actor in enumerate(self.actors):
            args = [a[i] for a in args_per_chunk]
            futures.append(getattr(actor, method)(*args, **kwargs))
        results = []
        for spec, fut in zip(self.specs, futures):
            try:
                results.append(fut.result())
            except Exception as exc:
                raise RuntimeError(f"chunk {spec.index} (channels {spec.first}-"
                                   f"{spec.first + spec.nchan - 1}) failed in {method}: {exc}"
                                   f" -- CASA logs in {spec.logdir}") from exc
        return results

    def close(self) -> None:
        """Close every chunk after a failure: the first error is the one to report."""
        try:
            self.call("close")
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
        summary = _cycles(plan, chunks)
        status = chunks.call("status")
        timings["imaging"] = time.time() - t0
        chunks.call("close")
    except BaseException:
        chunks.close()
        raise
    return summary, status


def _cycles(plan, chunks: ChunkSet) -> dict:
    p = plan.params
    usemask = plan.imager.getDecPars()["0"]["usemask"]
    psf = chunks.call("make_psf")
    chunks.call("make_pb")
    niter = int(p["niter"])
    summary = {}
    control = None
    if niter > 0:
        control = CubeIterationControl(plan.imager.getIterPars(), plan.chunks,
                                       p["fullsummary"])
    try:
        controls = control.major_controls(usemask) if control else {"lastcycle": True,
                                                                      "usemask": usemask}
        chunks.call("major_cycle", [controls] * len(plan.chunks))
        if control:
            control.end_major(clean_cycle=False)
            converged = control.converged(chunks.call("init_minor"))
            chunks.call("setup_mask")
            converged = control.converged(chunks.call("init_minor"))
            while not converged:
                minor = control.minor_controls()
                did = control.merge_minor(chunks.call("minor_cycle", [minor] * len(plan.chunks)))
                if did:
                    major = control.major_controls(usemask)
                    chunks.call("major_cycle", [major] * len(plan.chunks))
                    control.end_major(clean_cycle=True)
                chunks.call("setup_mask")
                converged = control.converged(chunks.call("init_minor")) or not did
            summary = control.summary()
    finally:
        if control:
            control.done()
    if p["restoration"]:
        beam = None
        if plan.common_beam:
            beam = common_beam([b for rec in psf for b in rec["beams"]])
        chunks.call("restore", restoringbeam=beam, pbcor=bool(p["pbcor"]))
    return summary
