"""pclean with 2 worker processes equals serial tclean, channel by channel, product by product."""
from __future__ import annotations

import os

import pytest

from conftest import IMAGING
from oracle import assert_cube_equal, assert_summary_equal
from pclean import compare_prefixes, pclean

CASES = {
    # name: (ms fixture, tclean parameters, chunk sizes to try)
    "natural-niter0-lsrk": ("ms_lsrk", dict(weighting="natural", niter=0), [6, 5, 1]),
    "briggs-hogbom-lsrk": ("ms_lsrk", dict(weighting="briggs", robust=0.5, niter=300,
                                           deconvolver="hogbom"), [None, 5]),
    "uniform-clark-topo": ("ms_topo", dict(weighting="uniform", niter=200, deconvolver="clark",
                                           pbcor=True), [None, 5, 1]),
    "briggs-multiscale-topo": ("ms_topo", dict(weighting="briggs", robust=0.0, niter=150,
                                               deconvolver="multiscale", scales=[0, 3, 8],
                                               cycleniter=40), [7]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pclean_equals_tclean(case, request, serial, client, tmp_path):
    ms_name, extra, chunkings = CASES[case]
    ms = request.getfixturevalue(ms_name)
    params = dict(IMAGING, **extra)
    ref_prefix, ref_summary = serial(ms, **params)
    for chanchunk in chunkings:
        prefix = str(tmp_path / f"pc{chanchunk}")
        got = pclean(vis=ms, imagename=prefix, cluster=client, chanchunk=chanchunk, **params)
        assert_cube_equal(prefix, ref_prefix)
        if params["niter"] > 0:
            assert_summary_equal(got, ref_summary)
        else:
            assert got["iterdone"] == 0


GRIDS = {
    "nonzero-start": dict(start=3, nchan=6),
    "negative-width": dict(start=10, width=-1, nchan=8),
    "width-2-channels": dict(width=2, nchan=-1),
    "frequency-start-width": dict(start="1.03GHz", width="12.5MHz", nchan=7),
    "velocity-start-bary": dict(start="0km/s", nchan=6, outframe="BARY", restfreq="1.07GHz"),
    "topo-outframe": dict(outframe="TOPO"),
}


@pytest.mark.parametrize("grid", list(GRIDS))
def test_channel_grids(grid, ms_topo, serial, client, tmp_path):
    params = dict(IMAGING, weighting="natural", niter=0, **GRIDS[grid])
    ref_prefix, _ = serial(ms_topo, **params)
    prefix = str(tmp_path / "pc")
    pclean(vis=ms_topo, imagename=prefix, cluster=client, chanchunk=2, **params)
    assert_cube_equal(prefix, ref_prefix)


def test_common_restoring_beam(ms_lsrk, serial, client, tmp_path):
    params = dict(IMAGING, weighting="briggs", niter=50, restoringbeam="common")
    ref_prefix, ref_summary = serial(ms_lsrk, **params)
    prefix = str(tmp_path / "pc")
    got = pclean(vis=ms_lsrk, imagename=prefix, cluster=client, chanchunk=4, **params)
    assert_cube_equal(prefix, ref_prefix)
    assert_summary_equal(got, ref_summary)


def test_shared_weight_density(ms_topo, serial, client, tmp_path):
    """perchanweightdensity=False: one density over all channels, computed by the coordinator."""
    params = dict(IMAGING, weighting="briggs", robust=-0.5, perchanweightdensity=False, niter=0)
    ref_prefix, _ = serial(ms_topo, **params)
    prefix = str(tmp_path / "pc")
    pclean(vis=ms_topo, imagename=prefix, cluster=client, chanchunk=3, **params)
    assert_cube_equal(prefix, ref_prefix)


def test_serial_fallback_for_mfs(ms_lsrk, serial, tmp_path):
    params = dict(specmode="mfs", imsize=64, cell="12arcsec", niter=0, pblimit=0.2)
    ref_prefix, _ = serial(ms_lsrk, **params)
    prefix = str(tmp_path / "mfs")
    pclean(vis=ms_lsrk, imagename=prefix, **params)
    assert_cube_equal(prefix, ref_prefix, products=("psf", "residual", "pb", "sumwt"))


def test_pixel_masks_below_pblimit(ms_lsrk, serial, client, tmp_path):
    """A field wider than the primary beam: tclean masks pixels below pblimit ("mask0" of
    .image, .residual, .pb, .image.pbcor); pclean's gathered products carry the same masks."""
    from oracle import image_metadata

    params = dict(specmode="cube", imsize=64, cell="60arcsec", pblimit=0.3, weighting="briggs",
                  niter=100, pbcor=True)
    ref_prefix, ref_summary = serial(ms_lsrk, **params)
    ref_mask = image_metadata(ref_prefix + ".image")["mask"]
    assert 0 < ref_mask.mean() < 1  # the case tests what it claims
    for gather in ("paged", "virtual"):  # chunks of 5 with halo channels: both copy paths
        prefix = str(tmp_path / gather)
        got = pclean(vis=ms_lsrk, imagename=prefix, cluster=client, chanchunk=5, gather=gather,
                     **params)
        compared = assert_cube_equal(prefix, ref_prefix)
        assert {"image", "residual", "pb", "image.pbcor"} <= set(compared)
        assert_summary_equal(got, ref_summary)
        assert compare_prefixes(prefix, ref_prefix).passed  # pclean compare agrees
    assert os.path.isfile(os.path.join(prefix + ".image", "imageconcat.json"))  # virtual
