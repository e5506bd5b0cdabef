"""A clean continued in a second call (calcpsf=False, calcres=False: more iterations from the
first call's images) equals serial tclean doing the same two calls, on two arrays and three
chunk plans; the first call's psf, pb and mask are left as they were. What serial refuses, or
what pclean cannot continue, is refused before any worker starts."""
from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from conftest import IMAGING, call_nowhere
from oracle import assert_cube_equal, assert_summary_equal, run_serial
from pclean import ParameterError, pclean

FIRST = dict(niter=60, cycleniter=5, threshold="0mJy")
SECOND = dict(niter=150, cycleniter=8, threshold="0mJy", calcpsf=False, calcres=False)
ALMA_IMAGING = dict(specmode="cube", imsize=64, cell="0.5arcsec", pblimit=0.2)


ARRAYS = {"vla": ("ms_lsrk", dict(IMAGING, weighting="briggs", robust=0.5), [None, [5, 7], 1]),
          "alma": ("ms_alma", dict(ALMA_IMAGING, mask="circle[[32pix,32pix],12pix]",
                                   restoringbeam="common", pbcor=True), [None, [3, 7], 1])}


def _digest(path: str) -> str:
    h = hashlib.sha256()
    for top, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            if name != "table.lock":
                with open(os.path.join(top, name), "rb") as f:
                    h.update(name.encode() + f.read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def serial_two_calls(tmp_path_factory):
    cache = {}

    def run(vis, imaging: dict):
        key = (vis, repr(sorted(imaging.items())))
        if key not in cache:
            prefix = str(tmp_path_factory.mktemp("tclean") / "ref")
            run_serial(vis, prefix, dict(imaging, **FIRST))
            second = dict(imaging, **SECOND)
            second.pop("mask", None)  # serial refuses a mask given again beside its .mask
            cache[key] = (prefix, run_serial(vis, prefix, second))
        return cache[key]

    return run


@pytest.mark.parametrize("array", list(ARRAYS))
def test_a_continued_clean_equals_serial_tclean(array, request, serial_two_calls, client,
                                                tmp_path):
    ms_name, imaging, plans = ARRAYS[array]
    ms = request.getfixturevalue(ms_name)
    ref_prefix, ref_summary = serial_two_calls(ms, imaging)
    second = {k: v for k, v in dict(imaging, **SECOND).items() if k != "mask"}
    for chanchunk in plans:
        prefix = str(tmp_path / f"pc{chanchunk}".replace(" ", ""))
        pclean(vis=ms, imagename=prefix, cluster=client, chanchunk=chanchunk,
               **dict(imaging, **FIRST))
        kept = {prod: _digest(f"{prefix}.{prod}") for prod in ("psf", "pb", "mask")}
        got = pclean(vis=ms, imagename=prefix, cluster=client, chanchunk=chanchunk, **second)
        assert_cube_equal(prefix, ref_prefix)
        assert_summary_equal(got, ref_summary)
        assert got["iterdone"] > 0
        for prod, digest in kept.items():  # serial's second call leaves them as they are
            assert _digest(f"{prefix}.{prod}") == digest, prod
        assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_pclean_continues_serial_tcleans_first_call(ms_lsrk, serial_two_calls, client,
                                                    tmp_path):
    """The first call by serial tclean (a copy of its images), the second by pclean: equal to
    serial's second call."""
    imaging = ARRAYS["vla"][1]
    ref_prefix, ref_summary = serial_two_calls(ms_lsrk, imaging)
    first = str(tmp_path / "first")
    run_serial(ms_lsrk, first, dict(imaging, **FIRST))
    got = pclean(vis=ms_lsrk, imagename=first, cluster=client, chanchunk=5,
                 **dict(imaging, **SECOND))
    assert_cube_equal(first, ref_prefix)
    assert_summary_equal(got, ref_summary)


@pytest.fixture(scope="module")
def first_call(ms_lsrk, tmp_path_factory):
    """The images of a first call (serial's), to be continued."""
    prefix = str(tmp_path_factory.mktemp("first") / "img")
    run_serial(ms_lsrk, prefix, dict(IMAGING, mask="circle[[32pix,32pix],10pix]", **FIRST))
    return prefix


def _copy(first: str, tmp_path) -> str:
    prefix = str(tmp_path / "img")
    for name in os.listdir(os.path.dirname(first)):
        if name.startswith("img."):
            shutil.copytree(os.path.join(os.path.dirname(first), name), str(tmp_path / name))
    return prefix


@pytest.mark.parametrize("change,message", [
    (dict(mask="circle[[20pix,20pix],5pix]"), r"img\.mask exists and mask=.* is given as well"),
    (dict(calcres=True), "calcpsf=False with calcres=True is not supported"),
    (dict(calcpsf=True), "calcres=False with calcpsf=True is not supported"),
    (dict(imsize=48), r"img\.psf is not on this call's grid \(shape \[64, 64, 1, 12\]"),
    (dict(cell="10arcsec"), "not on this call's grid .*its cell size"),
    (dict(phasecenter="J2000 19h59m30.0s +40d44m01.5s"), "its phase centre"),
    (dict(start=2, nchan=8), "not on this call's grid"),
])
def test_what_cannot_continue_is_refused_before_any_worker(ms_lsrk, first_call, tmp_path,
                                                           change, message):
    """Refused at an address nothing listens on: nothing started, the images untouched."""
    prefix = _copy(first_call, tmp_path)
    before = {n: _digest(str(tmp_path / n)) for n in os.listdir(tmp_path)}
    params = dict(IMAGING, **dict(SECOND, **change))
    with pytest.raises(ParameterError, match=message):
        call_nowhere(ms_lsrk, tmp_path, imagename=prefix, **params)
    assert {n: _digest(str(tmp_path / n)) for n in os.listdir(tmp_path)} == before


def test_a_continued_clean_needs_the_first_calls_images(ms_lsrk, first_call, tmp_path):
    prefix = _copy(first_call, tmp_path)
    shutil.rmtree(prefix + ".residual")
    with pytest.raises(ParameterError, match=r"calcres=False continues from the images of an "
                                             r"earlier call, and .*img\.residual do not exist"):
        call_nowhere(ms_lsrk, tmp_path, imagename=prefix, **dict(IMAGING, **SECOND))


def test_an_interrupted_continued_clean_continues_bit_identical(ms_lsrk, client, tmp_path,
                                                                 monkeypatch):
    """A continued clean stopped in a minor cycle (one chunk's done, the others' not), then
    the same call again: bit-identical to the continued clean undisturbed."""
    import numpy as np
    from casatools import image

    from conftest import stop_at

    imaging = dict(ARRAYS["vla"][1], chanchunk=4)
    first = str(tmp_path / "first")
    pclean(vis=ms_lsrk, imagename=first, cluster=client, **dict(imaging, **FIRST))
    prefixes = {}
    for name in ("calm", "cut"):
        os.makedirs(tmp_path / name)
        for prod in os.listdir(tmp_path):
            if prod.startswith("first."):
                shutil.copytree(str(tmp_path / prod),
                                str(tmp_path / name / prod.replace("first", "img")))
        prefixes[name] = str(tmp_path / name / "img")
    want = pclean(vis=ms_lsrk, imagename=prefixes["calm"], cluster=client,
                  **dict(imaging, **SECOND))
    with monkeypatch.context() as m:
        stop_at(m, "ChunkDone", "minor_cycle", 4)
        with pytest.raises(KeyboardInterrupt):
            pclean(vis=ms_lsrk, imagename=prefixes["cut"], cluster=client,
                   **dict(imaging, **SECOND))
    got = pclean(vis=ms_lsrk, imagename=prefixes["cut"], cluster=client,
                 **dict(imaging, **SECOND))
    for prod in ("image", "residual", "model", "psf", "pb", "mask", "sumwt"):
        planes = []
        for prefix in prefixes.values():
            ia = image()
            ia.open(f"{prefix}.{prod}")
            planes.append((ia.getchunk(), ia.restoringbeam()))
            ia.close()
        assert np.array_equal(planes[0][0], planes[1][0]) and planes[0][1] == planes[1][1], prod
    for key in ("iterdone", "nmajordone", "stopcode", "summaryminor"):
        assert repr(got[key]) == repr(want[key]), key
