"""A start model (``startmodel``) in parallel equals serial tclean given the same model, on two
arrays and three chunk plans: on the cube's grid (copied) and on another grid (regridded by
CASA, once, for the full cube); with and without iterations; interrupted before any minor
cycle and continued. What serial refuses, and a start model that is not an image, are refused
before any worker starts."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from conftest import IMAGING, call_nowhere, stop_at
from oracle import assert_cube_equal, assert_summary_equal, run_serial
from pclean import ParameterError, casa, pclean

CLEAN = dict(niter=40, cycleniter=10, threshold="0mJy")
VLA = dict(IMAGING, weighting="briggs", robust=0.5)
ALMA = dict(specmode="cube", imsize=64, cell="0.5arcsec", pblimit=0.2)
# the ALMA call images another grid than its start model's: CASA regrids the model onto it
ALMA_REGRID = dict(ALMA, imsize=72, cell="0.45arcsec", mask="circle[[36pix,36pix],12pix]",
                   restoringbeam="common", pbcor=True)
ARRAYS = {"vla-same-grid": ("ms_lsrk", VLA, VLA, [None, [5, 7], 1]),
          "alma-regridded": ("ms_alma", ALMA, ALMA_REGRID, [None, [3, 7], 1])}


def _pixels(path: str) -> np.ndarray:
    ia = casa.tools().image()
    ia.open(path)
    try:
        return ia.getchunk()
    finally:
        ia.close()


@pytest.fixture(scope="session")
def start_models(tmp_path_factory):
    """start_models(vis, imaging) -> a model image made by a first serial clean (a user's
    image: nothing beside it)."""
    cache = {}

    def make(vis, imaging: dict) -> str:
        key = (vis, repr(sorted(imaging.items())))
        if key not in cache:
            tmp = tmp_path_factory.mktemp("start")
            run_serial(vis, str(tmp / "first"), dict(imaging, **CLEAN))
            shutil.copytree(str(tmp / "first.model"), str(tmp / "start.im"))
            cache[key] = str(tmp / "start.im")
        return cache[key]

    return make


@pytest.mark.parametrize("array", list(ARRAYS))
def test_a_start_model_equals_serial_tclean(array, request, start_models, serial, client,
                                            tmp_path):
    ms_name, first, imaging, plans = ARRAYS[array]
    ms = request.getfixturevalue(ms_name)
    start = start_models(ms, first)
    params = dict(imaging, startmodel=start, **CLEAN)
    ref_prefix, ref_summary = serial(ms, **params)
    # the start model matters: serial without it has another residual and model
    plain_prefix, _ = serial(ms, **dict(imaging, **CLEAN))
    ref_residual = _pixels(f"{ref_prefix}.residual")
    assert np.abs(ref_residual - _pixels(f"{plain_prefix}.residual")).max() > (
        1e-2 * np.abs(ref_residual).max())
    before = os.stat(os.path.join(start, "table.f0")).st_mtime_ns
    for chanchunk in plans:
        prefix = str(tmp_path / f"pc{chanchunk}".replace(" ", ""))
        got = pclean(vis=ms, imagename=prefix, cluster=client, chanchunk=chanchunk, **params)
        assert_cube_equal(prefix, ref_prefix)
        assert_summary_equal(got, ref_summary)
        assert got["iterdone"] > 0
    assert os.stat(os.path.join(start, "table.f0")).st_mtime_ns == before  # read, not written


def test_a_start_model_without_iterations_equals_serial_tclean(ms_lsrk, start_models, serial,
                                                               client, tmp_path):
    """niter=0: the residual is the data less the start model's prediction, and the image
    restores the model; 1-channel chunks, so every prediction needs neighbour planes."""
    params = dict(VLA, startmodel=start_models(ms_lsrk, VLA), niter=0)
    ref_prefix, ref_summary = serial(ms_lsrk, **params)
    prefix = str(tmp_path / "img")
    got = pclean(vis=ms_lsrk, imagename=prefix, cluster=client, chanchunk=1, **params)
    assert_cube_equal(prefix, ref_prefix)
    assert_summary_equal(got, ref_summary)


def test_a_start_model_run_stopped_before_any_minor_cycle_continues(
        ms_lsrk, start_models, serial, client, tmp_path, monkeypatch):
    """Stopped in the first major cycle, the chunks' neighbour planes are still the start
    model's: the same call continues and equals serial."""
    params = dict(VLA, startmodel=start_models(ms_lsrk, VLA), chanchunk=4, **CLEAN)
    ref_prefix, ref_summary = serial(ms_lsrk, **{k: v for k, v in params.items()
                                                 if k != "chanchunk"})
    prefix = str(tmp_path / "cut")
    with monkeypatch.context() as m:
        stop_at(m, "ChunkDone", "major_cycle", 1)
        with pytest.raises(KeyboardInterrupt):
            pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **params)
    assert os.path.isdir(prefix + ".pclean-work")
    got = pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **params)
    assert_cube_equal(prefix, ref_prefix)
    assert_summary_equal(got, ref_summary)


def test_what_serial_refuses_with_a_start_model_is_refused_before_any_worker(
        ms_lsrk, start_models, tmp_path):
    """At an address nothing listens on: nothing started, nothing written."""
    start = start_models(ms_lsrk, VLA)
    prefix = str(tmp_path / "img")
    shutil.copytree(start, prefix + ".model")
    with pytest.raises(ParameterError, match=r"startmodel: .*img\.model exists and startmodel="
                                             r".* is given as well; tclean refuses this too"):
        call_nowhere(ms_lsrk, tmp_path, imagename=prefix, startmodel=start, niter=10)
    with pytest.raises(ParameterError, match="startmodel: 2 images given"):
        call_nowhere(ms_lsrk, tmp_path, startmodel=[start, start], niter=10)
    with pytest.raises(ParameterError, match=r"startmodel: .*nothere\.im' is not a CASA image.*"
                                             "serial tclean would image without a start model"):
        call_nowhere(ms_lsrk, tmp_path, startmodel=str(tmp_path / "nothere.im"), niter=10)
    assert sorted(os.listdir(tmp_path)) == ["img.model"]
