"""The cube-wide iteration control is what makes chunks equal serial tclean.

Negative control: the same chunks run as independent tclean calls (each with its own niter
budget and cycle thresholds, as a naive parallel imager does) must fail the comparison that
pclean passes.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import IMAGING
from oracle import assert_cube_equal, assert_summary_equal, read
from pclean import casa, pclean

PARAMS = dict(IMAGING, weighting="briggs", robust=0.5, niter=150, deconvolver="hogbom",
              cycleniter=30)
CHUNKS = [(0, 5), (5, 4), (9, 3)]


def independent_chunks(ms, prefix):
    """Each chunk imaged by its own serial tclean call, then concatenated."""
    from casatasks import tclean

    iterations = 0
    parts = []
    for k, (first, n) in enumerate(CHUNKS):
        part = f"{prefix}-part{k}"
        summary = tclean(vis=ms, imagename=part, start=first, nchan=n, **PARAMS)
        iterations += summary["iterdone"]
        parts.append(part)
    ia = casa.tools().image()
    for prod in ("residual", "model", "psf", "image", "pb", "sumwt"):
        ia.imageconcat(outfile=f"{prefix}.{prod}", infiles=[f"{p}.{prod}" for p in parts],
                       axis=-1, relax=True, tempclose=False, mode="p").done()
    ia.done()
    return iterations


def test_independent_chunks_fail_and_pclean_passes(ms_lsrk, serial, client, tmp_path):
    ref_prefix, ref_summary = serial(ms_lsrk, **PARAMS)

    naive = str(tmp_path / "naive")
    naive_iterations = independent_chunks(ms_lsrk, naive)
    assert naive_iterations != ref_summary["iterdone"]
    with pytest.raises(AssertionError, match="residual|model|image"):
        assert_cube_equal(naive, ref_prefix, products=("residual", "model", "image", "psf",
                                                         "pb", "sumwt"))
    ref_res = read(ref_prefix + ".residual")[0]
    naive_res = read(naive + ".residual")[0]
    assert np.abs(naive_res - ref_res).max() / np.abs(ref_res).max() > 1e-3

    got = pclean(vis=ms_lsrk, imagename=str(tmp_path / "pc"), cluster=client, chanchunk=5,
                 **PARAMS)
    assert_cube_equal(str(tmp_path / "pc"), ref_prefix)
    assert_summary_equal(got, ref_summary)


def test_a_failing_step_names_its_chunk_channels_and_step(ms_lsrk, client, tmp_path):
    """Steps run in stretches (one actor call per stretch); a failure must still say which
    chunk, which channels and which step, and where the CASA logs are."""
    from pclean import params
    from pclean.params import placement, schema
    from pclean.run import chunkset, cluster
    from pclean.workers.steps import step

    p = params.normalize(schema.bind((), dict(vis=ms_lsrk, imagename=str(tmp_path / "x"),
                                              specmode="cube", imsize=32, cell="12arcsec",
                                              nchan=4, niter=10)))
    plan = params.with_chunks(params.make_plan(p), 2)
    where = placement.place([(c.img_first, c.img_nchan) for c in plan.chunks],
                            cluster.worker_addresses(client))
    chunks = chunkset.DaskChunkSet(client, plan.chunks, where)
    try:
        res = chunks.run(step("make_psf"), step("make_pb"))
        psf = res["make_psf"]
        assert len(psf) == 2 and [len(r["beams"]["0"]) for r in psf] == [2, 2]
        with pytest.raises(RuntimeError, match=r"chunk 0 \(channels 0-1\) failed in "
                                               r"major_cycle: .* -- CASA logs in .*logs"):
            chunks.run(step("major_cycle", "not a controls record"), step("init_minor"))
    finally:
        chunks.close()
