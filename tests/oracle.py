"""The tests' oracle: is a cube equal to serial tclean's, product by product, channel by channel?

Deliberately independent of pclean.compare (compare has tests of its own). The bar: per channel
and product max|test-ref| <= 1e-5 of the product's peak; restoring beams to 1e-6 relative;
coordinates, pixel masks and image metadata as tclean's; the same set of products; the return
dict's iterdone, nmajordone, stopcode (and minor-cycle summary) equal.
"""
from __future__ import annotations

import glob
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np

from pclean import casa

# miscinfo keys tclean fills from the run itself (memory, processes), not from the data
RUN_MISCINFO = {"memavail", "memreq", "mpiprocs", "chnchnks"}


_SERIAL = r"""
import os, pickle, sys
from pclean import casa
casa.configure()
from casatasks import tclean
with open(sys.argv[1], "rb") as f:
    vis, imagename, params = pickle.load(f)
os.chdir(os.path.dirname(imagename) or ".")  # tclean's scratch tables go beside its images
try:
    out = ("ok", tclean(vis=vis, imagename=imagename, **params))
except Exception as exc:
    out = ("error", f"{type(exc).__name__}: {exc}")
with open(sys.argv[2], "wb") as f:
    pickle.dump(out, f)
"""


def run_serial(vis, imagename: str, params: dict, timeout: float = 1800) -> dict:
    """Serial tclean as a user calls it: in a fresh Python process, CASA's default threading.

    CASA quirk: frame conversions depend on what the process converted before (casacore caches
    nutation per epoch), so tclean's result does too: measured, the same call after simulating
    the MS in the same process gave a psf 1.2e-3 of peak off the same call in a fresh process.
    Returns tclean's summary dict; raises RuntimeError with tclean's error if it refused."""
    with tempfile.TemporaryDirectory() as tmp:
        given, result = os.path.join(tmp, "in.pkl"), os.path.join(tmp, "out.pkl")
        with open(given, "wb") as f:
            pickle.dump((vis, os.path.abspath(imagename), params), f)
        proc = subprocess.run([sys.executable, "-c", _SERIAL, given, result],
                              capture_output=True, text=True, timeout=timeout)
        if not os.path.exists(result):
            raise RuntimeError(f"serial tclean died (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-1000:]}")
        with open(result, "rb") as f:
            status, value = pickle.load(f)
    if status == "error":
        raise RuntimeError(value)
    return value


def products_of(prefix: str) -> set[str]:
    """Every image product written under ``prefix`` (``prefix.<product>`` directories)."""
    return {os.path.basename(p)[len(os.path.basename(prefix)) + 1:]
            for p in glob.glob(glob.escape(prefix) + ".*") if os.path.isdir(p)
            and not p.endswith((".pclean-work", ".fits"))}


def read(path):
    ia = casa.tools().image()
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
    ia = casa.tools().image()
    ia.open(path)
    try:
        # a virtual concatenation (gather='virtual') has its parts' masks but no mask name
        virtual = os.path.exists(os.path.join(path, "imageconcat.json"))
        default = None if virtual else ia.maskhandler("default")[0]
        summary = ia.summary(list=False)
        meta = {"unit": ia.brightnessunit(), "default_mask": default,
                "mask": ia.getchunk(getmask=True),
                "imagetype": summary.get("imagetype"), "objectname": summary.get("object", ""),
                "miscinfo_keys": sorted(k for k in ia.miscinfo() if k not in RUN_MISCINFO)}
    finally:
        ia.close()
    return meta


def beam_list(info):
    if not info:
        return []
    if "beams" not in info:
        return [info]
    return [info["beams"][f"*{c}"][f"*{s}"] for c in range(len(info["beams"]))
            for s in range(len(info["beams"]["*0"]))]


def _in(quantity: dict, unit: str) -> float:
    qa = casa.tools().quanta()
    return qa.convert(qa.quantity(float(quantity["value"]), quantity["unit"]), unit)["value"]


def _close(a, b, rel) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= rel * np.maximum(np.abs(b), 1e-300)))


def _coordinate_problems(prod, got, ref) -> list[str]:
    out = []
    gs, rs = got.get("spectral2", {}), ref.get("spectral2", {})
    for key in ("crval", "cdelt", "crpix"):
        if not _close(gs.get("wcs", {}).get(key, 0), rs.get("wcs", {}).get(key, 0), 1e-12):
            out.append(f".{prod}: spectral {key} {gs.get('wcs', {}).get(key)!r}, "
                       f"tclean {rs.get('wcs', {}).get(key)!r}")
    if "tabular" in rs or "tabular" in gs:
        for key in ("pixelvalues", "worldvalues"):
            if not _close(gs.get("tabular", {}).get(key, []), rs.get("tabular", {}).get(key, []),
                          1e-12):
                out.append(f".{prod}: tabular spectral {key} differs")
    for key in ("system", "restfreq", "velType"):
        if gs.get(key) != rs.get(key):
            out.append(f".{prod}: spectral {key} {gs.get(key)!r}, tclean {rs.get(key)!r}")
    gd, rd = got.get("direction0", {}), ref.get("direction0", {})
    for key in ("crval", "crpix", "cdelt"):
        if not _close(gd.get(key, 0), rd.get(key, 0), 1e-12):
            out.append(f".{prod}: direction {key} {gd.get(key)!r}, tclean {rd.get(key)!r}")
    if list(got.get("stokes1", {}).get("stokes", [])) != list(ref.get("stokes1", {}).get(
            "stokes", [])):
        out.append(f".{prod}: stokes {got.get('stokes1')}, tclean {ref.get('stokes1')}")
    return out


def compare_cube(test_prefix, ref_prefix, products=None, rtol=1e-5) -> tuple[list[str], float]:
    """(problems, worst max|diff|/peak over products and channels) of ``test_prefix`` against
    ``ref_prefix``. ``products``: the products to compare (default: every product either
    wrote, and both must have written the same ones)."""
    problems = []
    if products is None:
        got_set, ref_set = products_of(test_prefix), products_of(ref_prefix)
        if got_set != ref_set:
            problems.append(f"products differ: pclean only {sorted(got_set - ref_set)}, "
                            f"tclean only {sorted(ref_set - got_set)}")
        products = sorted(got_set & ref_set)
    worst = 0.0
    for prod in products:
        ref_path, test_path = f"{ref_prefix}.{prod}", f"{test_prefix}.{prod}"
        if not os.path.isdir(ref_path):
            if os.path.isdir(test_path):
                problems.append(f"pclean wrote .{prod}, tclean did not")
            continue
        if not os.path.isdir(test_path):
            problems.append(f"pclean did not write .{prod}")
            continue
        ref, ref_beams, ref_cs = read(ref_path)
        got, got_beams, got_cs = read(test_path)
        if got.shape != ref.shape:
            problems.append(f".{prod}: shape {got.shape} != {ref.shape}")
            continue
        if (np.isfinite(ref) != np.isfinite(got)).any():
            problems.append(f".{prod}: non-finite pixels: tclean "
                            f"{np.size(ref) - np.isfinite(ref).sum()}, pclean "
                            f"{np.size(got) - np.isfinite(got).sum()}")
        ref, got = np.nan_to_num(ref), np.nan_to_num(got)
        problems += _coordinate_problems(prod, got_cs, ref_cs)
        gm, rm = image_metadata(test_path), image_metadata(ref_path)
        for key in ("unit", "imagetype", "objectname", "miscinfo_keys"):
            if gm[key] != rm[key]:
                problems.append(f".{prod}: {key} {gm[key]!r}, tclean {rm[key]!r}")
        if gm["default_mask"] is not None and gm["default_mask"] != rm["default_mask"]:
            problems.append(f".{prod}: default pixel mask {gm['default_mask']!r}, "
                            f"tclean {rm['default_mask']!r}")
        bad = int((gm["mask"] != rm["mask"]).sum())
        if bad:
            problems.append(f".{prod}: {bad} pixel-mask values differ from tclean's")
        peak = float(np.abs(ref).max()) or 1.0
        per_chan = np.abs(got.astype(float) - ref).reshape(-1, ref.shape[-1]).max(axis=0) / peak
        worst = max(worst, float(per_chan.max()))
        if per_chan.max() > rtol:
            c = int(per_chan.argmax())
            problems.append(f".{prod}: channel {c} differs by {per_chan.max():.3e} of peak")
        rb, gb = beam_list(ref_beams), beam_list(got_beams)
        if len(rb) != len(gb):
            problems.append(f".{prod}: {len(gb)} beams, tclean has {len(rb)}")
            continue
        for k, (r, g) in enumerate(zip(rb, gb)):
            for key, unit, tol in (("major", "arcsec", 1e-6), ("minor", "arcsec", 1e-6),
                                   ("positionangle", "deg", None)):
                gv, rv = _in(g[key], unit), _in(r[key], unit)
                if abs(gv - rv) > (tol * abs(rv) if tol else 1e-6 * 180):
                    problems.append(f".{prod} plane {k} beam {key} {gv!r}, tclean {rv!r} {unit}")
    return problems, worst


def summary_problems(got: dict, ref: dict) -> list[str]:
    """The return dict's counts (and, where both have it, the minor-cycle summary)."""
    out = [f"{key} {got.get(key)!r}, tclean {ref.get(key)!r}"
           for key in ("iterdone", "nmajordone", "stopcode") if got.get(key) != ref.get(key)]
    if "summaryminor" in ref:
        out += _summaryminor_problems(got.get("summaryminor"), ref["summaryminor"])
    return out


def _flatten(tree, path=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flatten(v, path + (k,))
    else:
        yield path, tree


def _summaryminor_problems(got, ref, rtol=1e-5) -> list[str]:
    """Same fields, channels, Stokes planes and cycles; iteration counts and stop codes exact,
    the other figures (peak residual, model flux, thresholds: float32 sums that chunking may
    round differently, as it may the pixels) to ``rtol`` of the field's largest value."""
    if not isinstance(got, dict):
        return [f"summaryminor missing ({type(got).__name__})"]
    g, r = dict(_flatten(got)), dict(_flatten(ref))
    if g.keys() != r.keys():
        return [f"summaryminor entries differ: pclean only {sorted(g.keys() - r.keys())[:3]}, "
                f"tclean only {sorted(r.keys() - g.keys())[:3]}"]
    scale = {}
    for path, values in r.items():
        v = np.abs(np.asarray(values, dtype=float))
        scale[path[-1]] = max(scale.get(path[-1], 0.0), float(v[v < 1e15].max(initial=0)))
    out = []
    for path, values in r.items():
        a, b = np.asarray(g[path], dtype=float), np.asarray(values, dtype=float)
        exact = path[-1] in ("iterDone", "startIterDone", "cycleStartIters", "stopCode",
                             "masksum", "mpiServer")
        tol = 0.0 if exact else rtol * (scale[path[-1]] or 1.0)
        if a.shape != b.shape:
            out.append(f"summaryminor {path}: {a.tolist()}, tclean {b.tolist()}")
            continue
        # CASA quirk: a channel's entry for a cycle it skipped is uninitialized memory
        # (measured: -2.8e18 in one run, 4.2e17 in another, of the same call); where both are
        # such garbage there is nothing to compare
        junk_a, junk_b = ~(np.abs(a) < 1e15), ~(np.abs(b) < 1e15)
        if (junk_a != junk_b).any() or np.abs(a - b)[~junk_b].max(initial=0) > tol:
            out.append(f"summaryminor {path}: {a.tolist()}, tclean {b.tolist()}")
    return out[:5]


def ms_columns(ms: str) -> dict:
    """Every main-table column of an MS (FLAG_CATEGORY, often empty, aside): an array, or for
    a column whose cells differ in shape (several spws) a tuple of its rows' arrays (casacore
    aborts the process on getcol of such a column, measured)."""
    tb = casa.tools().table()
    tb.open(ms)
    try:
        out = {}
        for c in tb.colnames():
            if c == "FLAG_CATEGORY":
                continue
            if tb.isvarcol(c):
                cells = tb.getvarcol(c)
                out[c] = tuple(np.asarray(cells[f"r{r + 1}"]) for r in range(len(cells)))
            else:
                out[c] = tb.getcol(c)
        return out
    finally:
        tb.close()


def same_column(a, b) -> bool:
    """Two ``ms_columns`` values identical."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        return (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b)
                and all(np.array_equal(x, y) for x, y in zip(a, b)))
    return np.array_equal(a, b)


def _column_diff(a, b) -> tuple[float, float]:
    """(max|a-b|, max|b|) of two ``ms_columns`` values of one shape; inf if the shapes differ."""
    pairs = list(zip(a, b)) if isinstance(b, tuple) else [(a, b)]
    if isinstance(a, tuple) != isinstance(b, tuple) or len(pairs) != (len(b) if isinstance(
            b, tuple) else 1) or any(x.shape != y.shape for x, y in pairs):
        return float("inf"), 0.0
    diff = max((float(np.abs(x - y).max()) for x, y in pairs if y.size), default=0.0)
    peak = max((float(np.abs(y).max()) for _x, y in pairs if y.size), default=0.0)
    return diff, peak


def virtual_model(ms: str):
    """An MS's virtual model (``savemodel='virtual'``): (its record, flattened, and the
    pixels of the transformed model it keeps in the SOURCE table), or None. The record drops
    that image's name (it carries the writing process's id) and ``nantenna`` (an FTMachine
    member CASA never initialises: 1, 0 and 0 in three serial runs)."""
    tb = casa.tools().table()
    tb.open(os.path.join(ms, "SOURCE"))
    try:
        if "SOURCE_MODEL" not in tb.colnames():
            return None
        record = tb.getcell("SOURCE_MODEL", 0)
    finally:
        tb.close()

    def flat(r, pre=""):
        out = {}
        for k, v in r.items():
            out.update(flat(v, f"{pre}{k}/") if isinstance(v, dict) else {pre + k: v})
        return out

    record = flat(record)
    image = record.pop("ft_0/container/diskimage")
    assert image.startswith(os.path.join(ms, "SOURCE", "FT_MODEL")), image
    record.pop("ft_0/container/nantenna")
    ia = casa.tools().image()
    ia.open(image)
    try:
        return record, ia.getchunk()
    finally:
        ia.close()


def _same_entry(got, want) -> bool:
    """A virtual model record's entry as serial's: floats to 1e-10 relative. Its frequencies
    come through frame conversions, whose cached state depends on what the process converted
    before (measured, fuzz seed 1177, its MS simulated in the same process: imagefreq 4.3e-15
    and the spectral cdelt 8.7e-13 relative apart, the model image identical)."""
    if isinstance(want, str):
        return got == want
    got, want = np.asarray(got), np.asarray(want)
    if want.dtype.kind in "fc":
        return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-10, atol=0))
    return np.array_equal(got, want)


def saved_model_problems(test_ms: str, ref_ms: str, rtol: float = 1e-5) -> list[str]:
    """What ``savemodel`` left in ``test_ms`` against ``ref_ms`` (copies of one MS): the same
    columns, MODEL_DATA within ``rtol`` of its peak and every other column identical, and the
    same virtual model (or none)."""
    out = []
    got, want = ms_columns(test_ms), ms_columns(ref_ms)
    if sorted(got) != sorted(want):
        return [f"MS columns {sorted(got)}, tclean {sorted(want)}"]
    for col, values in want.items():
        if col == "MODEL_DATA":
            diff, peak = _column_diff(got[col], values)
            if diff > rtol * max(peak, 1e-30):
                out.append(f"MODEL_DATA max|diff| {diff:.3g} of peak {peak:.3g}")
        elif not same_column(got[col], values):
            out.append(f"MS column {col} changed")
    vg, vw = virtual_model(test_ms), virtual_model(ref_ms)
    if (vg is None) != (vw is None):
        out.append(f"virtual model {'written' if vg else 'missing'}, tclean's "
                   f"{'written' if vw else 'missing'}")
    elif vw is not None:
        (rg, ig), (rw, iw) = vg, vw
        if sorted(rg) != sorted(rw):
            out.append("virtual model record keys differ")
        else:
            out += [f"virtual model {k} differs" for k, v in rw.items()
                    if not _same_entry(rg[k], v)]
        if ig.shape != iw.shape or np.abs(ig - iw).max() > rtol * max(np.abs(iw).max(), 1e-30):
            out.append("virtual model image differs")
    return out


def assert_cube_equal(test_prefix, ref_prefix, products=None, rtol=1e-5):
    """Raise AssertionError naming the first difference; the products compared."""
    problems, _worst = compare_cube(test_prefix, ref_prefix, products, rtol)
    assert not problems, problems[0] + (f" (and {len(problems) - 1} more)"
                                        if len(problems) > 1 else "")
    compared = products if products is not None else sorted(products_of(ref_prefix))
    assert {"psf", "residual", "sumwt", "pb"} <= set(compared)
    return [p for p in compared if os.path.isdir(f"{ref_prefix}.{p}")]


def assert_summary_equal(got, ref):
    problems = summary_problems(got, ref)
    assert not problems, "; ".join(problems)


def assert_plans_equal(serial, client, tmp_path, ms, params: dict, plans: list):
    """Serial tclean once (the ``serial`` fixture), pclean with every chunk plan in ``plans``
    (a ``chanchunk`` each): every cube and return dict equal to serial's. Returns serial's
    image prefix."""
    from pclean import pclean

    tmp_path.mkdir(parents=True, exist_ok=True)
    ref_prefix, ref_summary = serial(ms, **params)
    for k, chanchunk in enumerate(plans):
        prefix = str(tmp_path / f"pc{k}")
        got = pclean(vis=ms, imagename=prefix, cluster=client, chanchunk=chanchunk, **params)
        assert_cube_equal(prefix, ref_prefix)
        assert_summary_equal(got, ref_summary)
    return ref_prefix
