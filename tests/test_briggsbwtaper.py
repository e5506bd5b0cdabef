"""briggsbwtaper in parallel: every chunk uses the full cube's fracBW, exactly as serial tclean."""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from conftest import IMAGING, assert_cube_equal, assert_summary_equal, read
from pclean import casaenv, fracbw, params, pclean, schema
from pclean.simulate import SimSpec, simulate
from pclean.workers import ChunkImager

BWTAPER = dict(IMAGING, weighting="briggsbwtaper", robust=0.5, perchanweightdensity=True)


@pytest.fixture(scope="module")
def ms_wide(data_dir):
    spec = SimSpec(nchan=10, chan_width_hz=40e6)  # 1.00-1.36 GHz
    assert spec.fracbw >= 0.3
    return simulate(str(data_dir / "wide.ms"), spec)


@pytest.mark.parametrize("niter, chunkings", [(0, [1, 4, None]), (200, [1, 4])])
def test_briggsbwtaper_equals_tclean(ms_wide, serial, client, tmp_path, niter, chunkings):
    params_ = dict(BWTAPER, niter=niter)
    ref_prefix, ref_summary = serial(ms_wide, **params_)
    ref_sumwt = read(ref_prefix + ".sumwt")[0].ravel()
    for chanchunk in chunkings:
        prefix = str(tmp_path / f"pc{chanchunk}")
        got = pclean(vis=ms_wide, imagename=prefix, cluster=client, chanchunk=chanchunk,
                     **params_)
        assert got["pclean"]["fracbw"] == pytest.approx(0.3050847457627119, rel=1e-12)
        assert_cube_equal(prefix, ref_prefix)
        np.testing.assert_allclose(read(prefix + ".sumwt")[0].ravel(), ref_sumwt, rtol=1e-7)
        if niter:
            assert_summary_equal(got, ref_summary)
        # the substitution really happened, in worker processes (not this one)
        for status in got["pclean"]["chunks"]:
            assert status["pid"] != os.getpid()
            assert status["fracbw_substitutions"] >= 1


def _plan(ms, tmp_path):
    p = params.normalize(dict(schema.defaults(), vis=ms, imagename=str(tmp_path / "neg"),
                              **dict(BWTAPER, niter=0)))
    plan = params.make_plan(p)
    params.split_chunks(plan, 1)
    return plan


def _chunk(plan, tmp_path, first, n, full_cube_value: bool):
    """One chunk imager in this process; without the full-cube value CASA uses its own."""
    spec = copy.deepcopy(plan.chunks[0])
    name = str(tmp_path / f"neg{first}" / "img")
    spec.impars.update(imagename=name, nchan=n, start=first)
    spec.normpars["imagename"] = spec.decpars["imagename"] = name
    spec.workdir = os.path.dirname(name)
    spec.first, spec.nchan, spec.halo_before, spec.halo_after = first, n, 0, 0
    spec.expected_freqs_hz = plan.grid.freqs_hz[first:first + n]
    spec.deconvolve = False
    spec.fracbw = plan.fracbw if full_cube_value else None
    return spec


def test_negative_control_without_full_cube_fracbw(ms_wide, serial, tmp_path):
    """The comparison can fail: chunks left to compute fracBW themselves are wrong."""
    ref_prefix, _ = serial(ms_wide, **dict(BWTAPER, niter=0))
    ref_psf, _, _ = read(ref_prefix + ".psf")
    ref_sumwt = read(ref_prefix + ".sumwt")[0].ravel()
    cwd = os.getcwd()
    plan = _plan(ms_wide, tmp_path)  # before any imager: CASA's failure below spoils the process
    try:
        # 1 channel: CASA computes fracBW = 0 and refuses
        imager = ChunkImager(_chunk(plan, tmp_path, 5, 1, full_cube_value=False))
        with pytest.raises(RuntimeError):
            imager.make_psf()
        imager.close()
        # several channels: runs, silently wrong
        imager = ChunkImager(_chunk(plan, tmp_path, 2, 6, full_cube_value=False))
        imager.make_psf()
        psf, _, _ = read(imager.spec.imagename + ".psf")
        sumwt = read(imager.spec.imagename + ".sumwt")[0].ravel()
        imager.close()
        assert np.abs(psf - ref_psf[..., 2:8]).max() > 1e-3
        assert np.abs(sumwt / ref_sumwt[2:8] - 1).max() > 0.05
        # the same chunk given the full-cube value: exact, and the shim counted it
        before = fracbw.substitutions()
        imager = ChunkImager(_chunk(plan, tmp_path, 2, 6, full_cube_value=True))
        imager.make_psf()
        psf, _, _ = read(imager.spec.imagename + ".psf")
        imager.close()
        assert np.abs(psf - ref_psf[..., 2:8]).max() <= 1e-5
        assert fracbw.substitutions() > before
    finally:
        os.chdir(cwd)
        fracbw.set_value(0.0)


def test_shim_loaded_before_casatools_here():
    casaenv.tools()
    assert fracbw.loaded() and not fracbw.loaded_too_late()
    fracbw.require()
