"""The coordinator's loop: drive every chunk through tclean's sequence of steps together.

Same order as casatasks' task_tclean with PySynthesisImager: psf (+pb), the first major cycle
(residual), then while the cube-wide iteration control says go: minor cycle on every chunk with
the same controls, major cycle on every chunk. Each stretch of steps is sent to all chunk actors
at once and waited for, so channels never drift apart in cycle count.
"""
from __future__ import annotations

import time

from pclean import chunking, psfbeams
from pclean.iteration import CubeIterationControl
from pclean.workers import ChunkImager


class PerChunk(list):
    """A step argument with one value per chunk, in chunk order."""


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
        each); for each step, the list of the chunks' results. An argument given as
        :class:`PerChunk` is the chunk's own element of it."""
        futures = [actor.run([tuple(a[k] if isinstance(a, PerChunk) else a for a in step)
                              for step in steps])
                   for k, actor in enumerate(self.actors)]
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
    from their merged records: after the first major cycle (the psf beams of the whole cube),
    before each minor cycle (convergence and the cycle threshold) and before each major cycle
    (which chunks iterated; is it the last cycle). The coordinator's own bookkeeping (the
    iterbot) sees the records in tclean's order."""
    p = plan.params
    usemask = plan.imager.getDecPars()["0"]["usemask"]
    niter = int(p["niter"])
    summary = {}
    control = None
    if niter > 0:
        control = CubeIterationControl(plan.imager.getIterPars(), plan.chunks, plan.grid.nchan,
                                       plan.grid.nstokes, p["imsize"], p["fullsummary"])
    try:
        controls = control.major_controls(usemask) if control else {"lastcycle": True,
                                                                      "usemask": usemask}
        # tclean: psf, pb, first major cycle, then hasConverged, updateMask, hasConverged
        psf, _pb, _major = chunks.run(("make_psf",), ("make_pb",), ("major_cycle", controls))
        beams, set_beams = _cube_psf_beams(plan, psf)
        if control:
            _beams, init_first, _mask, init = chunks.run(set_beams, ("init_minor",),
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
    finally:
        if control:
            control.done()
    final = [("finish",), ("status",), ("close",)]
    if not control:
        final.insert(0, set_beams)
    if p["restoration"]:
        beam = psfbeams.common_beam(beams, plan.grid.nstokes) if plan.common_beam else None
        final.insert(-2, ("restore", beam, bool(p["pbcor"])))
    return summary, chunks.run(*final)[-2]


def _cube_psf_beams(plan, psf: list[dict]) -> tuple[list[dict], tuple]:
    """The cube's psf beams as serial sets them (see psfbeams), and the step that writes them
    into the chunks whose own fill differs."""
    records = [b for rec in psf for b in rec["beams"]]
    valid = [v for rec in psf for v in rec["valid"]]
    subcubes = psfbeams.serial_subcubes(plan.grid.nchan, psf[0]["memreq_gb_per_chan"])
    cube = psfbeams.fill(records, valid, subcubes)
    per_chunk = PerChunk()
    for spec, rec in zip(plan.chunks, psf):
        own = cube[spec.first:spec.first + spec.nchan]
        per_chunk.append(None if own == rec["beams"] else own)
    return cube, ("set_psf_beams", per_chunk)
