"""``savemodel`` in parallel writes the MS's model as serial tclean does, and nothing else: the
model column (made where it is missing) row by row and channel by channel, on a VLA cube; the
virtual model's record and image, on an ALMA cube; three chunk plans each, the cubes and the
return dicts equal too. Every other column is as it was, and the MS opens."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import IMAGING
from oracle import (assert_cube_equal, assert_summary_equal, ms_columns, run_serial,
                    same_column, saved_model_problems, virtual_model)
from pclean import casa, pclean

CLEAN = dict(niter=40, cycleniter=10, threshold="0mJy")
VLA = dict(IMAGING, weighting="briggs", robust=0.5, **CLEAN)
ALMA = dict(specmode="cube", imsize=64, cell="0.5arcsec", pblimit=0.2,
            mask="circle[[32pix,32pix],12pix]", **CLEAN)


def _copy(ms: str, dest: str, without_model: bool = False) -> str:
    shutil.copytree(ms, dest)
    if without_model:  # serial's savemodel makes the column
        tb = casa.tools().table()
        tb.open(dest, nomodify=False)
        tb.removecols(["MODEL_DATA"])
        tb.close()
    return dest


def _opens(ms: str) -> int:
    tool = casa.tools().ms()
    tool.open(ms)
    try:
        return int(tool.nrow())
    finally:
        tool.close()


@pytest.fixture(scope="module")
def serial_saved(tmp_path_factory):
    """serial_saved(vis, params, without_model) -> (its MS, image prefix, summary)."""
    cache = {}

    def run(vis, params: dict, without_model: bool = False):
        key = (vis, repr(sorted(params.items())), without_model)
        if key not in cache:
            tmp = tmp_path_factory.mktemp("serial")
            ms = _copy(vis, str(tmp / "data.ms"), without_model)
            cache[key] = (ms, str(tmp / "ref"), run_serial(ms, str(tmp / "ref"), params))
        return cache[key]

    return run


def test_the_model_column_equals_serial_tcleans(ms_lsrk, serial_saved, client, tmp_path):
    params = dict(VLA, savemodel="modelcolumn")
    ref_ms, ref_prefix, ref_summary = serial_saved(ms_lsrk, params, without_model=True)
    want, before = ms_columns(ref_ms), ms_columns(ms_lsrk)
    assert np.abs(want["MODEL_DATA"]).max() > 0.1  # a model was written
    for chanchunk in (None, [5, 7], 1):
        name = f"pc{chanchunk}".replace(" ", "")
        ms = _copy(ms_lsrk, str(tmp_path / f"data-{name}.ms"), without_model=True)
        got = pclean(vis=ms, imagename=str(tmp_path / name), cluster=client,
                     chanchunk=chanchunk, **params)
        assert_cube_equal(str(tmp_path / name), ref_prefix)
        assert_summary_equal(got, ref_summary)
        assert got["pclean"]["timings"]["savemodel"] > 0
        # MODEL_DATA bit-identical, not only within the bar
        assert saved_model_problems(ms, ref_ms, rtol=0.0) == []
        cols = ms_columns(ms)
        for col, values in before.items():  # every other column as it was
            assert col == "MODEL_DATA" or same_column(cols[col], values), col
        assert _opens(ms) == len(before["TIME"])


def test_the_virtual_model_equals_serial_tcleans(ms_alma, serial_saved, client, tmp_path):
    params = dict(ALMA, savemodel="virtual")
    ref_ms, ref_prefix, ref_summary = serial_saved(ms_alma, params)
    assert virtual_model(ref_ms) is not None and virtual_model(ms_alma) is None
    before = ms_columns(ms_alma)
    for chanchunk in (None, [3, 7], 1):
        name = f"pc{chanchunk}".replace(" ", "")
        ms = _copy(ms_alma, str(tmp_path / f"data-{name}.ms"))
        got = pclean(vis=ms, imagename=str(tmp_path / name), cluster=client,
                     chanchunk=chanchunk, **params)
        assert_cube_equal(str(tmp_path / name), ref_prefix)
        assert_summary_equal(got, ref_summary)
        # the record key by key and its image's pixels equal, every column (the model
        # column too: a virtual model only) as it was
        assert saved_model_problems(ms, ref_ms, rtol=0.0) == []
        cols = ms_columns(ms)
        assert all(same_column(cols[col], values) for col, values in before.items())
        assert _opens(ms) == len(before["TIME"])


@pytest.mark.parametrize("savemodel", ["modelcolumn", "virtual"])
def test_savemodel_without_a_model_does_as_serial(ms_lsrk, serial_saved, client, tmp_path,
                                                  savemodel):
    """niter=0 and no start model: serial makes a model column of zeros where there is none
    ('modelcolumn') and saves no virtual model; so does pclean."""
    params = dict(IMAGING, niter=0, savemodel=savemodel)
    ref_ms, ref_prefix, _ = serial_saved(ms_lsrk, params, without_model=True)
    ms = _copy(ms_lsrk, str(tmp_path / "data.ms"), without_model=True)
    pclean(vis=ms, imagename=str(tmp_path / "img"), cluster=client, chanchunk=5, **params)
    assert_cube_equal(str(tmp_path / "img"), ref_prefix)
    assert saved_model_problems(ms, ref_ms, rtol=0.0) == []
    assert virtual_model(ms) is None
