"""briggsbwtaper in parallel: every chunk uses the full cube's fracBW, exactly as serial tclean."""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import IMAGING
from oracle import assert_cube_equal, assert_summary_equal, read
from pclean import casa, pclean
from pclean.casa import fracbw
from pclean.sim.simulate import SimSpec, simulate

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


NEGATIVE_CONTROL = r"""
import json, os, sys
import numpy as np
from pclean import casa, params
from pclean.casa import fracbw
from pclean.params import chunking, schema
from pclean.workers.actor import ChunkImager

ms, out, ref_prefix = sys.argv[1], sys.argv[2], sys.argv[3]
bwtaper = json.loads(sys.argv[4])
plan = params.make_plan(params.normalize(dict(schema.defaults(), vis=ms,
                                              imagename=os.path.join(out, "neg"), **bwtaper)))
ia = casa.tools().image()

def read(path):
    ia.open(path); a = ia.getchunk(); ia.close(); return a

def chunk(first, n, full_cube_value):
    values = {k: v for k, v in plan.cubewide.items() if full_cube_value or k != "fracbw"}
    before, after = chunking.halo(first, n, plan.grid.nchan, False)
    spec = chunking.ChunkSpec(
        index=10 * first + n + 100 * int(full_cube_value), first=first, nchan=n,
        workdir=plan.workdir, records=plan.records, cubewide=values,
        expected_freqs_hz=plan.grid.freqs_hz[first - before:first + n + after], deconvolve=False,
        halo_before=before, halo_after=after)
    name = spec.imagename()
    imager = ChunkImager(spec)
    try:
        imager.make_psf()
    except RuntimeError as exc:
        return {"error": str(exc)}
    finally:
        imager.close()
    psf, ref = read(name + ".psf"), read(ref_prefix + ".psf")[..., first:first + n]
    sumwt, ref_sumwt = read(name + ".sumwt").ravel(), read(ref_prefix + ".sumwt").ravel()
    return {"psf": float(np.abs(psf - ref).max()),
            "sumwt": float(np.abs(sumwt / ref_sumwt[first:first + n] - 1).max()),
            "substitutions": fracbw.substitutions()}

result = {"several_without": chunk(2, 6, False), "several_with": chunk(2, 6, True),
          "one_with": chunk(5, 1, True), "one_without": chunk(5, 1, False)}
print(json.dumps(result))
"""


def test_negative_control_without_full_cube_fracbw(ms_wide, serial, tmp_path):
    """The comparison can fail: chunks left to compute fracBW themselves are wrong.

    Runs in its own process: should CASA throw (a chunk gridded as one channel gets fracBW 0),
    its exception leaves casatools in a state that crashes later calls in the same process."""
    import json
    import subprocess
    import sys

    bwtaper = dict(BWTAPER, niter=0)
    ref_prefix, _ = serial(ms_wide, **bwtaper)
    out = subprocess.run([sys.executable, "-c", NEGATIVE_CONTROL, ms_wide, str(tmp_path),
                          ref_prefix, json.dumps(bwtaper)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    # without the full-cube value chunks are silently wrong (a 1-channel chunk is gridded with
    # a neighbour channel, so CASA computes a small fracBW instead of failing on 0)
    assert r["one_without"]["psf"] > 1e-3 and r["one_without"]["sumwt"] > 0.05
    assert r["several_without"]["psf"] > 1e-3 and r["several_without"]["sumwt"] > 0.05
    assert r["several_without"]["substitutions"] == 0
    # with it: exact, and the shim counted its substitutions
    assert r["several_with"]["psf"] <= 1e-5 and r["several_with"]["sumwt"] <= 1e-6
    assert r["one_with"]["psf"] <= 1e-5 and r["one_with"]["sumwt"] <= 1e-6
    assert r["one_with"]["substitutions"] > r["several_with"]["substitutions"] > 0


def test_shim_loaded_before_casatools_here():
    ct = casa.tools()
    assert fracbw.loaded() and not fracbw.loaded_too_late()
    fracbw.require(ct.synthesisimager.setweighting)
