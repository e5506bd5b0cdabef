"""compare, the xarray view and FITS export, on one small serial tclean cube (issue 4)."""
from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np
import pytest

from pclean import casa
from pclean.compare import compare_prefixes
from pclean.view.dataset import open_dataset

NCHAN = 8
IMSIZE = 48
IMAGING = dict(specmode="cube", imsize=IMSIZE, cell="12arcsec", niter=20, pblimit=-0.01)
SET = ("image", "residual", "model", "psf", "pb", "sumwt", "mask")


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    """(ms path, image prefix, tclean's return dict) of one serial tclean run."""
    from pclean.sim.simulate import SimSpec, simulate

    root = tmp_path_factory.mktemp("cube")
    vis = simulate(str(root / "sim.ms"), SimSpec(nchan=NCHAN), overwrite=True)
    casa.configure()
    from casatasks import tclean

    prefix = str(root / "ref")
    result = tclean(vis=vis, imagename=prefix, **IMAGING)
    return vis, prefix, result


def _tool():
    return casa.tools()


def _copy_set(prefix: str, dest: str, products=SET) -> str:
    for p in products:
        shutil.copytree(f"{prefix}.{p}", f"{dest}.{p}")
    return dest


def _axes(ia) -> tuple[int, int, int, int]:
    """casatools' axis numbers of (stokes, chan, y, x): a FITS file has Stokes last."""
    cs = ia.coordsys()
    types = list(cs.axiscoordinatetypes())
    cs.done()
    return types.index("Stokes"), types.index("Spectral"), 1, 0


def _casa_pixels(path: str) -> np.ndarray:
    """casatools' pixels as (stokes, chan, y, x)."""
    ia = _tool().image()
    ia.open(path)
    try:
        return ia.getchunk().transpose(_axes(ia))
    finally:
        ia.close()
        ia.done()


def _casa_beams(path: str) -> np.ndarray:
    """(nchan, 3): major, minor (arcsec), pa (deg) of Stokes 0, read with casatools."""
    ia = _tool().image()
    ia.open(path)
    try:
        out = []
        for c in range(ia.shape()[_axes(ia)[1]]):
            b = ia.restoringbeam(channel=c, polarization=0)
            out.append([b["major"]["value"], b["minor"]["value"], b["positionangle"]["value"]])
            assert (b["major"]["unit"], b["minor"]["unit"], b["positionangle"]["unit"]) == \
                ("arcsec", "arcsec", "deg")
        return np.array(out)
    finally:
        ia.close()
        ia.done()


def _parser():
    from pclean.cli.compare import add_compare_parser, add_fits_parser

    parser = argparse.ArgumentParser(prog="pclean")
    sub = parser.add_subparsers(dest="command", required=True)
    add_compare_parser(sub)
    add_fits_parser(sub)
    return parser


def _cli(*argv) -> int:
    ns = _parser().parse_args([str(a) for a in argv])
    return ns.func(ns)


# ---------------------------------------------------------------------------------------------
def test_self_compare_is_zero_and_passes(cube, tmp_path):
    _vis, prefix, _ = cube
    report = compare_prefixes(prefix, prefix)
    assert set(report.products) == set(SET)
    assert report.nchan == NCHAN
    for prod, d in report.products.items():
        assert d.peak > 0, prod
        np.testing.assert_array_equal(d.max_abs, 0.0)
        np.testing.assert_array_equal(d.max_rel, 0.0)
        np.testing.assert_array_equal(d.rms_rel, 0.0)
        np.testing.assert_array_equal(d.flux_ratio, 1.0)
    assert set(report.beams) == {"image", "psf"}
    for b in report.beams.values():
        for key in ("d_major_arcsec", "d_minor_arcsec", "d_pa_deg", "shape_rel"):
            np.testing.assert_array_equal(getattr(b, key), 0.0)
        assert np.all(b.major_arcsec > 10)
    assert report.passed and report.failures() == []
    assert report.table().splitlines()[-1] == "PASS"

    written = report.save(str(tmp_path / "self"))
    data = json.loads(open(written[0]).read())
    assert data["passed"] is True and data["tolerance"] == 1e-5
    assert data["products"]["residual"]["max_rel"] == [0.0] * NCHAN
    assert len(open(written[1]).read().strip().splitlines()) == 1 + len(SET) * NCHAN
    from matplotlib.image import imread

    assert imread(written[2]).shape[:2] == (900, 1000)  # a 10x9 inch figure at 100 dpi
    assert _cli("compare", prefix, prefix, "--report", tmp_path / "cli") == 0
    assert json.loads((tmp_path / "cli.json").read_text())["passed"] is True


def test_perturbed_copy_shows_size_and_channel_and_fails(cube, tmp_path):
    _vis, prefix, _ = cube
    pert = _copy_set(prefix, str(tmp_path / "pert"))
    chan, x, y = 5, 10, 20
    ia = _tool().image()
    ia.open(pert + ".residual")
    peak = float(np.abs(ia.getchunk()).max())
    plane = ia.getchunk(blc=[0, 0, 0, chan], trc=[IMSIZE - 1, IMSIZE - 1, 0, chan])
    before = float(plane.sum(dtype=np.float64))
    delta = 1e-3 * peak
    original = np.float32(plane[x, y, 0, 0])
    plane[x, y, 0, 0] += delta
    stored = float(np.float32(plane[x, y, 0, 0])) - float(original)  # as the image stores it
    ia.putchunk(plane, blc=[0, 0, 0, chan])
    ia.close()
    ia.done()

    report = compare_prefixes(pert, prefix)
    res = report.products["residual"]
    assert res.peak == pytest.approx(peak, rel=1e-7)
    assert res.max_abs[chan] == pytest.approx(stored, rel=1e-12)
    assert res.max_rel[chan] == pytest.approx(1e-3, rel=1e-4)
    assert res.rms_rel[chan] == pytest.approx(1e-3 / IMSIZE, rel=1e-4)  # one pixel of 48x48
    assert res.flux_ratio[chan] == pytest.approx((before + stored) / before, rel=1e-9)
    others = [c for c in range(NCHAN) if c != chan]
    np.testing.assert_array_equal(res.max_abs[others], 0.0)
    for prod, d in report.products.items():
        if prod != "residual":
            np.testing.assert_array_equal(d.max_abs, 0.0)
    assert not report.passed
    (failure,) = report.failures()
    assert ".residual" in failure and "channel 5" in failure
    assert compare_prefixes(pert, prefix, tolerance=2e-3).passed

    # the same on selections of the xarray views: channels keep their numbers
    from pclean.compare import compare_datasets

    sub = compare_datasets(open_dataset(pert).isel(chan=[4, 5]),
                           open_dataset(prefix).isel(chan=[4, 5]))
    assert list(sub.channels) == [4, 5] and "channel 5" in sub.failures()[0]
    assert sub.products["residual"].max_abs[1] == res.max_abs[chan]

    rows = [r for r in report.rows() if not r["passed"]]
    assert [(r["product"], r["chan"]) for r in rows] == [("residual", chan)]
    assert _cli("compare", pert, prefix, "--report", tmp_path / "rep") == 1
    data = json.loads((tmp_path / "rep.json").read_text())
    assert data["passed"] is False
    assert data["products"]["residual"]["max_rel"][chan] == pytest.approx(1e-3, rel=1e-4)

    # the plot draws what the report measured: the residual's line peaks at channel 5
    fig = report.figure()
    assert fig.axes[0].get_title().startswith("FAIL")
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == ".residual")
    np.testing.assert_array_equal(line.get_xdata(), np.arange(NCHAN))
    ydata = np.asarray(line.get_ydata())
    assert ydata[chan] == pytest.approx(1e-3, rel=1e-4)
    np.testing.assert_array_equal(ydata[others], 1e-12)  # zeros at the log axis' floor
    assert _cli("compare", pert, prefix, "--tolerance", "2e-3",
                "--report", tmp_path / "rep2") == 0


def test_pixel_masks_are_compared(cube, tmp_path):
    """tclean masks pixels below pblimit; a set whose masks differ must not pass."""
    _vis, prefix, _ = cube
    mask = np.ones((IMSIZE, IMSIZE, 1, NCHAN), bool)
    mask[:5, :5] = False  # a masked corner, as below pblimit
    ref, test = (_copy_set(prefix, str(tmp_path / name)) for name in ("ref", "test"))
    flipped = mask.copy()
    flipped[20, 20, 0, 3] = False
    ia = _tool().image()
    for path, m in ((ref, mask), (test, flipped)):
        ia.open(path + ".image")
        ia.putregion(pixelmask=m)  # creates the default mask
        ia.close()
    ia.done()

    assert compare_prefixes(ref, ref).passed
    report = compare_prefixes(test, ref)
    assert report.failures() == [".image pixel mask: 1 pixel-mask values differ "
                                 "(first: channel 3)"]
    np.testing.assert_array_equal(report.products["image"].max_abs, 0.0)  # pixels are equal
    unmasked = compare_prefixes(prefix, ref)
    assert not unmasked.passed and "default pixel mask ''" in unmasked.failures()[0]


def test_dataset_equals_casatools(cube, tmp_path):
    _vis, prefix, _ = cube
    ds = open_dataset(prefix)
    assert set(SET) <= set(ds.data_vars)
    assert ds.image.dims == ("stokes", "chan", "y", "x")
    assert ds.sumwt.dims == ("stokes", "chan")
    assert ds.image.data.chunks == ((1,), (1,) * NCHAN, (IMSIZE,), (IMSIZE,))  # lazy, per chan
    for prod in SET:
        expected = _casa_pixels(f"{prefix}.{prod}")
        if prod == "sumwt":
            expected = expected[:, :, 0, 0]
        np.testing.assert_array_equal(ds[prod].values, expected, err_msg=prod)
    np.testing.assert_array_equal(ds.residual.isel(chan=3, x=slice(5, 40, 3)).values,
                                  _casa_pixels(prefix + ".residual")[:, 3, :, 5:40:3])

    ct = _tool()
    ia = ct.image()
    ia.open(prefix + ".image")
    cs = ia.coordsys()
    assert ds.attrs["spectral_frame"] == cs.referencecode("spectral")[0] == "LSRK"
    assert ds.frequency.attrs["frame"] == "LSRK" and ds.frequency.attrs["units"] == "Hz"
    for c in range(NCHAN):
        world = cs.toworld([0, 0, 0, c], "n")["numeric"]
        assert ds.frequency.values[c] == world[3]
    y, x = 7, 31
    world = cs.toworld([x, y, 0, 0], "n")["numeric"]
    assert ds.ra.values[y, x] == pytest.approx(np.degrees(world[0]), abs=1e-12)
    assert ds.dec.values[y, x] == pytest.approx(np.degrees(world[1]), abs=1e-12)
    assert list(ds.stokes.values) == list(cs.stokes()) == ["I"]
    assert ds.image.attrs["units"] == ia.brightnessunit() == "Jy/beam"
    assert ds.attrs["telescope"] == cs.telescope()
    assert ds.attrs["rest_frequency_hz"] == cs.restfrequency()["value"][0]
    cs.done()
    ia.close()
    ia.done()
    beams = _casa_beams(prefix + ".image")
    np.testing.assert_array_equal(ds.beam_major.sel(product="image", stokes="I"), beams[:, 0])
    np.testing.assert_array_equal(ds.beam_minor.sel(product="image", stokes="I"), beams[:, 1])
    np.testing.assert_array_equal(ds.beam_pa.sel(product="image", stokes="I"), beams[:, 2])
    assert np.all(np.isnan(ds.beam_major.sel(product="residual")))

    # a virtual concatenation (pclean gather='virtual') reads the same
    rg = ct.regionmanager()
    parts = []
    for k, (lo, hi) in enumerate(((0, 2), (3, NCHAN - 1))):
        ia.open(prefix + ".image")
        part = str(tmp_path / f"part{k}.image")
        ia.subimage(part, region=rg.box([0, 0, 0, lo], [IMSIZE - 1, IMSIZE - 1, 0, hi])).done()
        ia.close()
        parts.append(part)
    ia.imageconcat(outfile=str(tmp_path / "virt.image"), infiles=parts, axis=-1, relax=True,
                   tempclose=False, mode="m").done()
    ia.done()
    rg.done()
    virt = open_dataset(str(tmp_path / "virt"), products=["image"])
    assert virt.image.attrs["storage"] == "virtual"
    np.testing.assert_array_equal(virt.image.values, ds.image.values)
    np.testing.assert_array_equal(virt.frequency.values, ds.frequency.values)
    np.testing.assert_array_equal(virt.beam_major.values[0], ds.beam_major.sel(product="image"))


def test_fits_roundtrip(cube, tmp_path):
    from astropy.io import fits

    from pclean.view import fitsio

    _vis, prefix, _ = cube
    written = fitsio.export_all(prefix, outdir=str(tmp_path), products=["image", "residual"])
    base = os.path.basename(prefix)
    assert written == [str(tmp_path / f"{base}.{p}.fits") for p in ("image", "residual")]
    ds = open_dataset(prefix, products=["image"])
    with fits.open(written[0]) as hdul:
        hdr = hdul[0].header
        np.testing.assert_array_equal(hdul[0].data, ds.image.values)  # (stokes, chan, y, x)
        assert hdr["BUNIT"] == "Jy/beam" and hdr["SPECSYS"] == "LSRK" and hdr["CASAMBM"]
        assert hdr["CTYPE3"] == "FREQ" and hdr["CTYPE4"] == "STOKES"
        freqs = hdr["CRVAL3"] + (np.arange(NCHAN) + 1 - hdr["CRPIX3"]) * hdr["CDELT3"]
        np.testing.assert_allclose(freqs, ds.frequency.values, rtol=1e-12)
        beams = hdul["BEAMS"].data
        assert hdul["BEAMS"].columns["BMAJ"].unit == "arcsec"
        np.testing.assert_array_equal(beams["CHAN"], np.arange(NCHAN))
        np.testing.assert_array_equal(beams["POL"], 0)
        casa = _casa_beams(prefix + ".image")
        for k, col in enumerate(("BMAJ", "BMIN", "BPA")):  # stored as 32-bit floats
            np.testing.assert_allclose(beams[col], casa[:, k], rtol=1e-6)
            assert len(set(beams[col])) > 1  # per-plane beams, not one beam
    # casatools reads pixels and per-plane beams back
    np.testing.assert_array_equal(_casa_pixels(written[0]), ds.image.values)
    np.testing.assert_allclose(_casa_beams(written[0]), _casa_beams(prefix + ".image"), rtol=1e-6)
    with fits.open(written[1]) as hdul:
        np.testing.assert_array_equal(hdul[0].data, _casa_pixels(prefix + ".residual"))
        assert "BEAMS" not in hdul

    with pytest.raises(FileExistsError, match="image.fits"):
        fitsio.export(prefix + ".image", written[0])
    before = os.path.getmtime(written[0])
    fitsio.export(prefix + ".image", written[0], overwrite=True)
    assert os.path.getmtime(written[0]) >= before
    with pytest.raises(FileNotFoundError, match="nothere.image"):
        fitsio.export(str(tmp_path / "nothere.image"), str(tmp_path / "x.fits"))
    assert _cli("fits", prefix, "--outdir", tmp_path / "cli", "--products", "psf") == 0
    with fits.open(tmp_path / "cli" / f"{base}.psf.fits") as hdul:
        np.testing.assert_array_equal(hdul[0].data, _casa_pixels(prefix + ".psf"))
        assert len(hdul["BEAMS"].data) == NCHAN
    assert _cli("fits", prefix, "--outdir", tmp_path / "cli", "--products", "psf") == 2


def test_bad_inputs_give_clear_errors(cube, tmp_path):
    _vis, prefix, _ = cube
    missing = str(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no images with prefix .*nothing"):
        open_dataset(missing)
    with pytest.raises(FileNotFoundError, match="nothing"):
        compare_prefixes(missing, prefix)
    with pytest.raises(FileNotFoundError, match=r"ref\.weight"):
        compare_prefixes(prefix, prefix, products=["image", "weight"])
    with pytest.raises(FileNotFoundError, match="did you mean the prefix"):
        open_dataset(prefix + ".image")
    assert _cli("compare", missing, prefix) == 2
    assert _cli("compare", prefix) == 2

    ct = _tool()
    ia = ct.image()
    rg = ct.regionmanager()
    ia.open(prefix + ".image")
    ia.subimage(str(tmp_path / "short.image"),
                region=rg.box([0, 0, 0, 0], [IMSIZE - 1, IMSIZE - 1, 0, 3])).done()
    ia.close()
    rg.done()
    with pytest.raises(ValueError, match=r"\.image shapes .*\(1, 4, 48, 48\).*\(1, 8, 48, 48\)"):
        compare_prefixes(str(tmp_path / "short"), prefix, products=["image"])

    def altered(name, change):
        path = str(tmp_path / f"{name}.image")
        shutil.copytree(prefix + ".image", path)
        ia.open(path)
        cs = ia.coordsys()
        change(cs)
        ia.setcoordsys(cs.torecord())
        cs.done()
        ia.close()
        return str(tmp_path / name)

    bary = altered("bary", lambda cs: cs.setreferencecode("BARY", "spectral", adjust=False))
    with pytest.raises(ValueError, match="spectral frames differ: BARY .test. vs LSRK .ref."):
        compare_prefixes(bary, prefix, products=["image"])

    def shift(cs):
        ref = cs.referencevalue(format="n")
        ref["numeric"][3] *= 1 + 1e-7
        cs.setreferencevalue(ref)

    shifted = altered("shifted", shift)
    with pytest.raises(ValueError, match="channel frequencies .* in 8 channel"):
        compare_prefixes(shifted, prefix, products=["image"])
    ia.done()
    assert _cli("compare", bary, prefix, "--products", "image") == 2


def test_run_and_compare_cli(cube, tmp_path):
    """compare --run: serial tclean and pclean with the same parameters, then the comparison."""
    vis, _prefix, tclean_result = cube
    imagename = tmp_path / "run"
    argv = ["compare", "--run", "--vis", vis, "--imagename", imagename, "--nworkers", "2",
            "--report", tmp_path / "run-report"]
    for key, value in IMAGING.items():
        argv += [f"--{key}", value]
    assert _cli(*argv) == 0
    data = json.loads((tmp_path / "run-report.json").read_text())
    assert data["passed"] is True and data["ref_prefix"] == f"{imagename}.tclean"
    assert data["wall_time_s"]["test"] > 0 and data["wall_time_s"]["ref"] > 0
    for side in ("test", "ref"):
        assert data["iterations"][side] == {"iterdone": tclean_result["iterdone"],
                                            "nmajordone": tclean_result["nmajordone"]}
    assert set(data["products"]) >= set(SET)
    for prod, d in data["products"].items():
        assert max(d["max_rel"]) <= 1e-5, prod
    # the pclean and tclean products are where the report says
    assert os.path.isdir(f"{imagename}.image") and os.path.isdir(f"{imagename}.tclean.image")
    # refuses to run over existing tclean output
    assert _cli(*argv) == 2


def test_assert_matches_serves_a_pipelines_own_tests(cube, tmp_path):
    """pclean.testing.assert_matches: silent on an equal set, an AssertionError naming the
    product and channel on a perturbed one, and a tolerance that admits it."""
    from pclean.testing import assert_matches

    _vis, prefix, _ = cube
    same = _copy_set(prefix, str(tmp_path / "same"))
    assert assert_matches(same, prefix).passed
    pert = _copy_set(prefix, str(tmp_path / "pert"))
    ia = _tool().image()
    ia.open(pert + ".residual")
    plane = ia.getchunk(blc=[0, 0, 0, 3], trc=[IMSIZE - 1, IMSIZE - 1, 0, 3])
    plane[10, 20, 0, 0] += 1e-3 * float(np.abs(ia.getchunk()).max())
    ia.putchunk(plane, blc=[0, 0, 0, 3])
    ia.close()
    ia.done()
    with pytest.raises(AssertionError, match=r"\.residual: max\|diff\|/peak > 1e-05 in 1 "
                                             r"channel\(s\) \(worst 0\.001 in channel 3\)"):
        assert_matches(pert, prefix)
    assert_matches(pert, prefix, rtol=2e-3)


def test_the_xarray_engine_opens_a_set_lazily(cube):
    """xr.open_dataset(<prefix>.image, engine="pclean"): the set of that prefix, read only
    when indexed (xarray's lazily indexed arrays), equal to open_dataset and to casatools."""
    import xarray as xr
    from xarray.core import indexing

    _vis, prefix, _ = cube
    ds = xr.open_dataset(prefix + ".image", engine="pclean")
    assert set(SET) <= set(ds.data_vars)
    assert isinstance(ds.image.variable._data, indexing.MemoryCachedArray) or isinstance(
        ds.image.variable._data, indexing.LazilyIndexedArray) or isinstance(
        getattr(ds.image.variable._data, "array", None), indexing.LazilyIndexedArray)
    reference = open_dataset(prefix)
    np.testing.assert_array_equal(ds.image.isel(chan=3).values,
                                  reference.image.isel(chan=3).values)
    np.testing.assert_array_equal(ds.image.values, _casa_pixels(prefix + ".image"))
    np.testing.assert_array_equal(ds.sumwt.values, reference.sumwt.values)
    chunked = xr.open_dataset(prefix, engine="pclean", products=["psf"], chunks={})
    assert list(chunked.data_vars)[:1] == ["psf"] and chunked.psf.chunks is not None
    assert xr.backends.list_engines()["pclean"].guess_can_open(prefix + ".image")
