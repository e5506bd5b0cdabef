"""The differential fuzzer's fixed-seed CI subset (tests/fuzzing.py; the long run is
benchmarks/fuzz.py): random data and tclean calls, serial tclean against pclean.

The seeds are a fixed range, not chosen: whatever they draw must pass. Seeds the long runs found
failing are kept below as regressions, with what they exercise. The range is what the suite's
25 minutes afford (10 seeds, about 25 s each); the long run draws the next ones
(``benchmarks/fuzz.py --first 10``) and thousands more.
"""
from __future__ import annotations

import pytest

import fuzzing

CI_SEEDS = range(0, 10)

# seeds a long run found failing (each fixed since), with the case they draw
REGRESSIONS = {
    0: "3 MSs, briggs per-channel weighting, clark: refused up front (CASA's weighting is not "
       "the same for a sub-cube; before that, serial's threads changed clark's residual)",
    5: "cubedata with briggsbwtaper and 1-channel chunks: a given csys made CASA convert frames",
    6: "3 MSs of one spw each, briggs: CASA's cube Briggs weighting segfaulted in the workers",
    1013: "cubic interpolation, a chunk edge inside the cube: two model planes each side were "
          "too few (4.4e-3 of the residual's peak)",
    1028: "cubic interpolation on a 2-channel cube: serial fails, pclean failed after starting; "
          "now refused up front",
    1047: "restoringbeam='common' with a mask: the common-beam restore was refused by CASA; "
          "with savemodel (drawn since): a cube from data channel 5, whose MODEL_DATA below "
          "it serial leaves as it was (CASA's predict alone wrote zeros there)",
    1063: "savemodel with niter=0 and no start model: serial's major cycle writes the empty "
          "model into the image's channels, zeros, and leaves the others as they were",
    1141: "savemodel, field 1 all flagged at its last three times: serial's major cycle "
          "skips those buffers and leaves their model column as it was (predictmodel wrote "
          "zeros)",
    1177: "savemodel='virtual' with outframe BARY, the MS simulated in the same process: "
          "the record's frequencies are ulps apart (frame-conversion state), compared to "
          "1e-10",
    1093: "savemodel with nsigma: casatasks cleans read-only and saves the model after, with "
          "its selection reset; the predict without the reset wrote nothing",
    1054: "restoringbeam='common': the common beam's angle in serial's units (radians)",
    1065: "cubic interpolation of 3 selected data channels: refused up front, as serial fails",
    1098: "a 1-channel optical-velocity cube (a tabular axis without increment): planning "
          "failed",
    1132: "nsigma with multiscale, an empty channel at the band edge: serial iterated 4 times "
          "more (CASA carries the n-sigma threshold between channels); now refused up front",
    1134: "image channels of exactly 2 data channels, TOPO image of LSRK data: chunks starting "
          "where CASA's LSRK channel spacing rounds down gridded the spw edges differently; "
          "after other plannings in the process, also the coordinator's (frames.start_afresh)",
    2000: "restoringbeam='common', the largest psf beam not enclosing the others: serial's "
          "getCommonBeam writes the common beam into that plane's psf beam and leaves its "
          "residual unconvolved (0.23 of peak)",
    2013: "a 1-channel cube: serial's model lacks the 'useweightimage' miscinfo key (its "
          "1-channel deconvolver writes it so); pclean added it as for chunks of a wider cube",
    2032: "image channel = 2 data channels, spw 0:0~11: CASA builds its interpolation points "
          "by repeated addition from the sub-cube's anchor, and the far-edge point fell inside "
          "or outside the data by ulps (edge channel's sumwt, psf, beam 1e-3 off)",
    2130: "data channels 1.5 image channels wide, cubic, 1-channel chunks, niter 0: every "
          "third chunk's narrowed selection held one data channel and its psf was blank",
    2143: "a spw inside the cube, cubic, niter > 0: serial does not degrid the channels below "
          "the spw's lowest, a chunk whose sub-cube ends inside the spw does (residual 6.5e-3 "
          "of peak at the spw's lowest channel); such a chunk grids to the spw's top",
    2164: "nsigma with stokes IV and a 1-channel chunk: CASA's 1-channel minor cycle judged "
          "Stokes V by Stokes I's noise; now refused for chanchunk asking for 1",
    2181: "a TOPO cube of BARY data, image channel = 1 data channel starting at the spw's top: "
          "the two conversions make CASA take its interpolation-points path, and the far "
          "edge's point fell inside or outside the data by the chunk's anchor (channel 0's "
          "psf 1.0 of peak off)",
    2263: "the same with stokes IQ and chanchunk [1, 1] (residual 0.21 of peak): refused",
}


@pytest.fixture(scope="module")
def ms_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fuzz-ms"))


@pytest.mark.parametrize("seed", sorted(set(CI_SEEDS) | set(REGRESSIONS)))
def test_fuzz_case(seed, client, ms_cache, tmp_path):
    result = fuzzing.run_case(seed, str(tmp_path), cluster=client, cache_dir=ms_cache)
    assert result["status"] in fuzzing.PASSING, (
        f"seed {seed}: {result['status']}: {result.get('message')}\n"
        f"params {result['params']}, chunks {result.get('chunks')}")
    if result["status"] == "rejected":  # the refusal says why, and what to do instead
        assert "serial tclean" in result["message"] and ("Run serial tclean" in result["message"]
                                                          or "Use " in result["message"])


def test_nsigma_with_hogbom_is_equal_where_multiscale_is_refused(client, ms_cache, tmp_path):
    """Seed 1132 (refused: nsigma with multiscale) with hogbom instead: hogbom does nothing in
    a channel entered below the cycle threshold, so the n-sigma threshold CASA carries from
    channel to channel cannot change the cube or the summary (without fullsummary)."""
    result = fuzzing.run_case(1132, str(tmp_path), cluster=client, cache_dir=ms_cache,
                              overrides={"deconvolver": "hogbom", "scales": None})
    assert result["params"]["nsigma"] > 0 and result["chunks"]
    assert result["status"] == "equal", result["message"]
