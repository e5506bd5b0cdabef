"""Shared test fixtures: simulated MSs, one 2-worker Dask cluster, serial tclean references.

Every parity test runs serial tclean the way a user calls it and pclean with 2 worker processes,
and compares every channel of every product numerically (``assert_cube_equal``).
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

# CASA's log for the test process goes to a temporary file, not the repository
os.environ.setdefault("PCLEAN_CASA_LOGFILE",
                      os.path.join(tempfile.gettempdir(), f"pclean-tests-{os.getpid()}.log"))

from pclean import casaenv  # noqa: E402
from pclean.simulate import SimSpec, simulate  # noqa: E402

PRODUCTS = ("psf", "residual", "model", "image", "pb", "sumwt", "mask", "image.pbcor")
IMAGING = dict(specmode="cube", imsize=64, cell="12arcsec", pblimit=0.2)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def ms_lsrk(data_dir):
    # 12 channels of 12.5 MHz from 1.0 GHz: fracBW 0.13
    return simulate(str(data_dir / "lsrk.ms"), SimSpec(nchan=12, frame="LSRK"))


@pytest.fixture(scope="session")
def ms_topo(data_dir):
    return simulate(str(data_dir / "topo.ms"), SimSpec(nchan=12, frame="TOPO"))


@pytest.fixture(scope="session")
def client():
    from pclean import cluster

    with cluster.connect(None, nworkers=2) as c:
        yield c


_serial_cache = {}


@pytest.fixture(scope="session")
def serial(tmp_path_factory):
    """serial(vis, **params) -> prefix of a serial tclean run (cached per parameter set)."""

    def run(vis, **params):
        key = (vis, repr(sorted(params.items())))
        if key not in _serial_cache:
            from casatasks import tclean

            prefix = str(tmp_path_factory.mktemp("tclean") / "ref")
            summary = tclean(vis=vis, imagename=prefix, **params)
            _serial_cache[key] = (prefix, summary)
        return _serial_cache[key]

    return run


def read(path):
    ia = casaenv.tools().image()
    ia.open(path)
    try:
        pixels = ia.getchunk()
        beams = ia.restoringbeam()
        csys = ia.coordsys().torecord()
    finally:
        ia.close()
    return pixels, beams, csys


def image_metadata(path):
    """What a CASA image carries besides pixels: unit, pixel mask (values, all True without
    one; the name of a plain image's default mask), image type, object name, miscinfo keys."""
    ct = casaenv.tools()
    ia = ct.image()
    ia.open(path)
    try:
        # a virtual concatenation (gather='virtual') has its parts' masks but no mask name
        virtual = os.path.exists(os.path.join(path, "imageconcat.json"))
        default = None if virtual else ia.maskhandler("default")[0]
        summary = ia.summary(list=False)
        meta = {"unit": ia.brightnessunit(), "default_mask": default,
                "mask": ia.getchunk(getmask=True),
                "imagetype": summary.get("imagetype"), "objectname": summary.get("object", ""),
                "miscinfo_keys": sorted(k for k in ia.miscinfo() if k not in _RUN_MISCINFO)}
    finally:
        ia.close()
    return meta


# miscinfo keys tclean fills from the run itself (memory, processes), not from the data
_RUN_MISCINFO = {"memavail", "memreq", "mpiprocs", "chnchnks"}


def _beam_list(info):
    if not info:
        return []
    if "beams" not in info:
        return [info]
    return [info["beams"][f"*{c}"]["*0"] for c in range(len(info["beams"]))]


def assert_cube_equal(test_prefix, ref_prefix, products=PRODUCTS, rtol=1e-5):
    """Per channel and product: max|test-ref| <= rtol * product peak; beams to 1e-6; pixel
    masks, coordinates and image metadata as tclean's. Deliberately independent of
    pclean.compare (the tests' own oracle; compare has tests of its own)."""
    compared = []
    for prod in products:
        ref_path, test_path = f"{ref_prefix}.{prod}", f"{test_prefix}.{prod}"
        if not os.path.isdir(ref_path):
            assert not os.path.isdir(test_path), f"pclean wrote .{prod}, tclean did not"
            continue
        assert os.path.isdir(test_path), f"pclean did not write .{prod}"
        ref, ref_beams, ref_cs = read(ref_path)
        got, got_beams, got_cs = read(test_path)
        assert got.shape == ref.shape, f".{prod}: shape {got.shape} != {ref.shape}"
        assert np.isfinite(ref).all() == np.isfinite(got).all(), (
            f".{prod}: non-finite pixels: tclean {np.size(ref) - np.isfinite(ref).sum()}, "
            f"pclean {np.size(got) - np.isfinite(got).sum()}")
        ref, got = np.nan_to_num(ref), np.nan_to_num(got)
        assert got_cs["spectral2"]["wcs"] == pytest.approx(ref_cs["spectral2"]["wcs"], rel=1e-12)
        assert got_cs["direction0"]["crval"] == pytest.approx(ref_cs["direction0"]["crval"])
        assert got_cs["direction0"]["crpix"] == pytest.approx(ref_cs["direction0"]["crpix"])
        gm, rm = image_metadata(test_path), image_metadata(ref_path)
        for key in ("unit", "imagetype", "objectname", "miscinfo_keys"):
            assert gm[key] == rm[key], f".{prod}: {key} {gm[key]!r}, tclean {rm[key]!r}"
        if gm["default_mask"] is not None:
            assert gm["default_mask"] == rm["default_mask"], f".{prod}: default pixel mask"
        bad = int((gm["mask"] != rm["mask"]).sum())
        assert bad == 0, f".{prod}: {bad} pixel-mask values differ from tclean's"
        peak = float(np.abs(ref).max()) or 1.0
        per_chan = np.abs(got.astype(float) - ref).max(axis=(0, 1, 2)) / peak
        worst = int(per_chan.argmax())
        assert per_chan.max() <= rtol, (
            f".{prod}: channel {worst} differs by {per_chan.max():.3e} of peak")
        rb, gb = _beam_list(ref_beams), _beam_list(got_beams)
        assert len(rb) == len(gb), f".{prod}: {len(gb)} beams, tclean has {len(rb)}"
        for c, (r, g) in enumerate(zip(rb, gb)):
            for key in ("major", "minor"):
                assert g[key]["value"] == pytest.approx(r[key]["value"], rel=1e-6), (
                    f".{prod} channel {c} beam {key}")
            assert g["positionangle"]["value"] == pytest.approx(
                r["positionangle"]["value"], abs=1e-6 * 180)
        compared.append(prod)
    assert {"psf", "residual", "sumwt", "pb"} <= set(compared)
    return compared


def assert_summary_equal(got, ref):
    """Total iterations and major cycles as tclean's."""
    assert got["iterdone"] == ref["iterdone"]
    assert got["nmajordone"] == ref["nmajordone"]
    assert got["stopcode"] == ref["stopcode"]
