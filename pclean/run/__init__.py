"""Stage 3, on the coordinator: the cluster, and tclean's cycles over every chunk.

    cluster    where chunks run (embedded cluster, a scheduler, SLURM jobs)
    chunkset   the chunks of a run called together (a Dask actor each), emitting events
    checkpoint every completed stretch's calls and results: what a resume starts from
    loop       tclean's cycle sequence, written against a chunk set
    iteration  the cube-wide iteration control (serial's one iterbot, fed combined records)
    psfbeams   the psf beam fill and the common beam, from every chunk's psf
    events     what a run reports (stretches, iterations, busy time) and its observers
    summary    tclean's return dict
"""
from __future__ import annotations

import time

from pclean import casa
from pclean.params import placement
from pclean.run import checkpoint, chunkset, iteration, loop, summary


def image(plan, client, workers: list[str], timings: dict, observers=(),
          recorded: list | None = None) -> tuple[dict, list]:
    """Image every chunk of ``plan`` (chunks planned) on ``workers``; tclean's summary dict
    (without deconvolution: empty) and each chunk's status. ``timings`` gets the seconds the
    chunks took to start and to image. ``recorded``: the checkpointed stretches of an
    interrupted run of this plan, to continue after (``checkpoint``)."""
    p = plan.params
    t0 = time.time()
    where = placement.place([(c.img_first, c.img_nchan) for c in plan.chunks], workers,
                            plan.chunks[0].npix)
    log = checkpoint.StretchLog(plan.workdir.stretches)
    if recorded:
        log.truncate(len(recorded))  # a line cut short by the interruption goes
    chunks = chunkset.DaskChunkSet(client, plan.chunks, where, observers, log, recorded)
    timings["worker_startup"] = time.time() - t0
    t0 = time.time()
    control = None
    if int(p["niter"]) > 0:
        control = iteration.CubeIterationControl(
            casa.tools().iterbotsink(), plan.records.iterpars,
            [(c.first, c.nchan) for c in plan.chunks], plan.grid.nchan, p["imsize"],
            p["fullsummary"], summary.summary_rows(p["fullsummary"]), plan.fields)
    try:
        outcome = loop.cycles(plan, chunks, control)
    finally:
        if control:
            control.done()
    timings["imaging"] = time.time() - t0
    timings["checkpoints"] = chunks.checkpoint_s
    summ = summary.tclean_summary(outcome.summary, p["fullsummary"]) if control else {}
    return summ, outcome.status
