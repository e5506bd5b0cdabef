"""tclean's cycle sequence, driven over every chunk together.

Same order as casatasks' task_tclean with PySynthesisImager: psf (+pb), the first major cycle
(residual), then while the cube-wide iteration control says go: minor cycle on every chunk with
the same controls, major cycle on every chunk. Each stretch of steps is sent to all chunks at
once and waited for (``chunkset``), so channels never drift apart in cycle count. The chunks
wait for the coordinator only where it decides something from their merged records: after the
first major cycle (the psf beams of the whole cube), before each minor cycle (convergence and
the cycle threshold) and before each major cycle (which chunks iterated; is it the last cycle).
The coordinator's own bookkeeping (the iterbot) sees the records in tclean's order.

Written against the chunk-set facade and an iteration control given to it, the loop runs as
well on an in-process fake (tests/unit) as on Dask actors.
"""
from __future__ import annotations

from dataclasses import dataclass

from pclean.run import psfbeams
from pclean.workers.steps import PerChunk, step


@dataclass
class Outcome:
    summary: dict  # the iterbot's summary (empty without deconvolution)
    status: list  # each chunk's status record


@dataclass(frozen=True)
class CubeBeams:
    """How the cube's psf beams are made whole (serial's fill over its sub-cubes) and the
    common restoring beam computed; given to the loop so tests can replace CASA's."""

    subcubes: object = psfbeams.serial_subcubes
    fill: object = psfbeams.fill
    common: object = psfbeams.common_beam


def cycles(plan, chunks, control=None, beams: CubeBeams = CubeBeams()) -> Outcome:
    """Image every chunk of ``plan`` through tclean's sequence on ``chunks`` (a chunk set);
    ``control``: the cube-wide iteration control (None without deconvolution). The chunks'
    tools are closed on return, so their images can be gathered."""
    p = plan.params
    usemask = plan.records.decpars["0"]["usemask"]  # as PySynthesisImager: the main field's
    try:
        controls = control.major_controls(usemask) if control else {"lastcycle": True,
                                                                      "usemask": usemask}
        # tclean: psf, pb, first major cycle, then hasConverged, updateMask, hasConverged; a
        # continued clean (calcpsf=False, calcres=False) has the earlier call's psf, pb and
        # residual, and no first major cycle
        if plan.continues:
            psf = chunks.run(step("read_psf", key="make_psf"))
        else:
            psf = chunks.run(step("make_psf"), step("make_pb"), step("major_cycle", controls))
        cube_beams, set_beams = _cube_psf_beams(plan, psf["make_psf"], beams)
        if control:
            res = chunks.run(set_beams, step("init_minor", key="first_init"), step("setup_mask"),
                             step("init_minor"))
            if not plan.continues:
                control.end_major(clean_cycle=False)
            control.converged(res["first_init"])
            converged = control.converged(res["init_minor"])
            while not converged:
                minor = control.minor_controls()
                did = control.merge_minor(
                    chunks.run(step("minor_cycle", minor))["minor_cycle"])
                if did:
                    major = control.major_controls(usemask)
                    res = chunks.run(step("major_cycle", major), step("setup_mask"),
                                     step("init_minor"))
                    control.end_major(clean_cycle=True)
                else:
                    res = chunks.run(step("setup_mask"), step("init_minor"))
                converged = control.converged(res["init_minor"]) or not did
        final = [step("finish"), step("status"), step("close")]
        if not control:
            final.insert(0, set_beams)
        if p["restoration"]:
            restoring = {f: (beams.common(cube_beams[f], plan.grid.nstokes)
                             if plan.common_beam else None) for f in plan.fields}
            args = [restoring, bool(p["pbcor"])]
            if plan.common_beam:
                args.append(_common_planes(plan, cube_beams))
            final.insert(-2, step("restore", *args))
        status = [dict(record, chunk=k, first=c.first, nchan=c.nchan)
                  for k, (record, c) in enumerate(zip(chunks.run(*final)["status"],
                                                      plan.chunks))]
        return Outcome(control.summary() if control else {}, status)
    except BaseException:
        chunks.close()
        raise


def _cube_psf_beams(plan, psf: list[dict], beams: CubeBeams):
    """Every field's psf beams for the cube as serial sets them (see psfbeams), and the step
    that writes them into the chunks whose own fill differs."""
    subcubes = beams.subcubes(plan.grid.nchan, psf[0]["memreq_gb_per_chan"])
    cube, per_chunk = {}, PerChunk({} for _ in plan.chunks)
    for f in plan.fields:
        records = [b for rec in psf for b in rec["beams"][f]]
        valid = [v for rec in psf for v in rec["valid"][f]]
        cube[f] = beams.fill(records, valid, subcubes)
        for k, (spec, rec) in enumerate(zip(plan.chunks, psf)):
            own = cube[f][spec.first:spec.first + spec.nchan]
            per_chunk[k][f] = None if own == rec["beams"][f] else own
    return cube, step("set_psf_beams", per_chunk)


def _common_planes(plan, cube_beams: dict) -> PerChunk:
    """For restoringbeam='common': each chunk's own channel (or None) whose Stokes-0 plane
    serial restores with the common beam as its psf beam (see psfbeams.max_area_channel)."""
    out = PerChunk({} for _ in plan.chunks)
    for f in plan.fields:
        c = psfbeams.max_area_channel(cube_beams[f])
        for k, spec in enumerate(plan.chunks):
            out[k][f] = c - spec.first if spec.first <= c < spec.first + spec.nchan else None
    return out
