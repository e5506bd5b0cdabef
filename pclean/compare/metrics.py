"""Channel-by-channel comparison of two image sets: pclean's against serial tclean's.

>>> report = compare_prefixes("cube", "cube.tclean")      # two existing sets
>>> print(report.table()); report.passed
>>> report = pclean.run_and_compare(dict(vis="x.ms", imagename="cube", specmode="cube", ...))

For every product present in the sets (``.image .residual .model .psf .pb .sumwt .mask`` and
any other of pclean's products) and every channel:

* ``max_abs``: max |test - ref| over the channel's Stokes planes and pixels (the product's units);
* ``max_rel`` and ``rms_rel``: that maximum, and the rms of test - ref, divided by the
  reference product's peak |value| over the *whole cube* (one scale per product, so that a
  channel with little emission is not judged on its own noise; a product that is zero
  everywhere in the reference is compared in absolute terms);
* ``flux_ratio``: sum(test) / sum(ref) over the channel (1 where both sums are 0, NaN where only
  the reference's is);
* restoring beams (products with beams: .image, .psf, ...): major/minor differences in arcsec
  and relative, PA difference in degrees (wrapped to [-90, 90)), and ``shape_rel``, the
  relative difference of the beams' second-moment matrices (a PA change of a round beam does not
  count).

Pixels that are NaN in both sets are equal; NaN in one only is an infinite difference. Masks
compare as numbers. The comparison passes when every ``max_rel``, every beam's ``major_rel``,
``minor_rel`` and ``shape_rel`` are <= ``tolerance`` (default 1e-5), both sets hold the same
products, and the iteration counts (when known for both runs) are equal.
"""
from __future__ import annotations

import numpy as np

from pclean.compare.report import DEFAULT_TOLERANCE, BeamDiff, ProductDiff, Report
from pclean.view.dataset import open_dataset

_FREQ_RTOL = 1e-9
# pixels read per dask chunk: each chunk opens its image once. Measured on the demo's cube
# (256 channels of 256x256, 7 products): one channel a chunk 30 s, 16 channels (4 MiB) 5.6 s
_CHUNK_BYTES = 4 * 2**20


def compare_prefixes(test_prefix: str, ref_prefix: str, tolerance: float = DEFAULT_TOLERANCE,
                     products=None) -> Report:
    """Compare the image set ``test_prefix`` with ``ref_prefix`` channel by channel.

    products: which products (default: every product either set holds; one held by only one
    set makes the comparison fail). FileNotFoundError for a missing prefix or requested
    product; ValueError if the sets differ in shape, spectral frame, channel frequencies
    (relative 1e-9), Stokes or sky grid.
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    probe = open_dataset(test_prefix, products)  # metadata only: the plane size
    plane = max([int(np.prod(v.shape[:1] + v.shape[2:])) for v in probe.data_vars.values()
                 if v.ndim == 4] or [1])
    chunks = {"chan": max(1, int(_CHUNK_BYTES // (4 * plane)))}
    test = open_dataset(test_prefix, products, chunks=chunks)
    ref = open_dataset(ref_prefix, products, chunks=chunks)
    report = compare_datasets(test, ref, tolerance, names=(str(test_prefix), str(ref_prefix)))
    report.missing.update(_pixel_mask_differences(test_prefix, ref_prefix, test, ref, chunks))
    return report


def _pixel_mask_differences(test_prefix, ref_prefix, test, ref, chunks=None) -> dict[str, str]:
    """Default pixel masks (tclean's "mask0" below pblimit): same values, and same name where
    both images are plain (a virtual concatenation carries its parts' masks without a name)."""
    import dask

    out, same = {}, []
    for prod in [p for p in _products_of(ref) if p in _products_of(test)]:
        ta, ra = test[prod].attrs, ref[prod].attrs
        tn, rn = ta.get("pixel_mask", ""), ra.get("pixel_mask", "")
        paged = ta.get("storage") == ra.get("storage") == "paged"
        if paged and tn != rn:
            out[f"{prod} pixel mask"] = f"default pixel mask {tn!r} (test) vs {rn!r} (ref)"
        elif tn or rn or not paged:
            same.append(prod)
    if not same:
        return out
    # masked=True reads pixels outside the mask as NaN: compare where each set has them
    tm = open_dataset(test_prefix, same, chunks=chunks, masked=True)
    rm = open_dataset(ref_prefix, same, chunks=chunks, masked=True)
    lazy = {}
    for prod in same:
        t = tm[prod].transpose("chan", ...).data
        r = rm[prod].transpose(*tm[prod].transpose("chan", ...).dims).data
        lazy[prod] = (np.isnan(t) != np.isnan(r)).sum(axis=tuple(range(1, t.ndim)))
    (counts,) = dask.compute(lazy, scheduler="threads")
    for prod, per_chan in counts.items():
        bad = np.flatnonzero(per_chan)
        if len(bad):
            out[f"{prod} pixel mask"] = (f"{int(per_chan.sum())} pixel-mask values differ "
                                         f"(first: channel {int(ref.chan.values[bad[0]])})")
    return out


def compare_datasets(test, ref, tolerance: float = DEFAULT_TOLERANCE,
                     names: tuple[str, str] | None = None) -> Report:
    """:func:`compare_prefixes` on two datasets from :func:`pclean.dataset.open_dataset` (or
    selections of them, e.g. ``ds.isel(chan=slice(0, 10))``). ``names`` label the two sets in
    the report (default: their ``prefix`` attrs)."""
    import dask

    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    test_prefix, ref_prefix = names or (test.attrs.get("prefix", "test"),
                                        ref.attrs.get("prefix", "ref"))
    tprods, rprods = _products_of(test), _products_of(ref)
    missing = {}
    for prod in tprods:
        if prod not in rprods:
            missing[prod] = f"only in {test_prefix} (test)"
    for prod in rprods:
        if prod not in tprods:
            missing[prod] = f"only in {ref_prefix} (ref)"
    common = [p for p in rprods if p in tprods]
    _check_compatible(test, ref, common, test_prefix, ref_prefix)

    lazy = {p: _lazy_metrics(test[p], ref[p]) for p in common}
    # read here, not on whatever Dask cluster is the default (its workers may not see the
    # files, or sit in another working directory)
    (computed,) = dask.compute(lazy, scheduler="threads")
    products = {}
    for prod in common:
        m = computed[prod]
        peak = float(m["peak"])
        scale = peak if peak > 0 else 1.0
        products[prod] = ProductDiff(
            product=prod, units=ref[prod].attrs.get("units", ""), peak=peak,
            max_abs=m["max_abs"], max_rel=m["max_abs"] / scale, rms_rel=m["rms"] / scale,
            flux_ratio=_ratio(m["sum_test"], m["sum_ref"]))
    beams = {}
    notes = []
    for prod in common:
        has_t = _has_beam(test, prod)
        has_r = _has_beam(ref, prod)
        if has_t != has_r:
            where = f"{test_prefix} (test)" if has_t else f"{ref_prefix} (ref)"
            missing[f"{prod} beam"] = "restoring beam only in " + where
        elif has_r:
            beams[prod] = _beam_diff(prod, test, ref)
    for prod in common:
        ut, ur = test[prod].attrs.get("units", ""), ref[prod].attrs.get("units", "")
        if ut != ur:
            notes.append(f".{prod}: brightness unit {ut!r} (test) vs {ur!r} (ref)")
    return Report(test_prefix=str(test_prefix), ref_prefix=str(ref_prefix),
                  tolerance=float(tolerance), frequency_hz=np.asarray(ref.frequency.values),
                  spectral_frame=ref.attrs["spectral_frame"],
                  channels=np.asarray(ref.chan.values), products=products, beams=beams,
                  missing=missing, notes=notes)


def _products_of(ds) -> list[str]:
    return [p for p in ds.attrs.get("products", ds.data_vars) if p in ds.data_vars
            and ds[p].ndim >= 2 and "chan" in ds[p].dims and p not in _BEAM_VARS]


_BEAM_VARS = ("beam_major", "beam_minor", "beam_pa")


def _check_compatible(test, ref, common, test_prefix, ref_prefix) -> None:
    def describe(what, t, r):
        return ValueError(f"cannot compare {test_prefix} with {ref_prefix}: {what} differ: "
                          f"{t} (test) vs {r} (ref)")

    for prod in common:
        if test[prod].shape != ref[prod].shape:
            raise describe(f".{prod} shapes {test[prod].dims}", test[prod].shape,
                           ref[prod].shape)
    if test.attrs["spectral_frame"] != ref.attrs["spectral_frame"]:
        raise describe("spectral frames", test.attrs["spectral_frame"],
                       ref.attrs["spectral_frame"])
    ft, fr = test.frequency.values, ref.frequency.values
    if len(ft) != len(fr):
        raise describe("numbers of channels", len(ft), len(fr))
    bad = np.flatnonzero(np.abs(ft - fr) > _FREQ_RTOL * np.abs(fr))
    if len(bad):
        c = bad[0]
        raise describe(f"channel frequencies (relative tolerance {_FREQ_RTOL:g}) in "
                       f"{len(bad)} channel(s), first channel {c}",
                       f"{ft[c]!r} Hz", f"{fr[c]!r} Hz")
    if list(test.stokes.values) != list(ref.stokes.values):
        raise describe("Stokes", list(test.stokes.values), list(ref.stokes.values))
    if test.attrs.get("direction_frame") != ref.attrs.get("direction_frame"):
        raise describe("direction frames", test.attrs.get("direction_frame"),
                       ref.attrs.get("direction_frame"))
    for name in ("l", "m"):
        if name in test.coords and name in ref.coords:
            a, b = test[name].values, ref[name].values
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-9, atol=1e-9):
                def grid(v):
                    step = v[1] - v[0] if len(v) > 1 else float("nan")
                    return f"{len(v)} pixels from {v[0]:.6g} arcsec in steps of {step:.6g}"

                raise describe(f"sky grids ({name} offsets from the reference direction)",
                               grid(a), grid(b))
    if "ra" in test.coords and "ra" in ref.coords:
        import dask

        corners = (slice(None, None, max(1, test.sizes["y"] - 1)),
                   slice(None, None, max(1, test.sizes["x"] - 1)))
        pos = dask.compute(test.ra.data[corners], test.dec.data[corners],
                           ref.ra.data[corners], ref.dec.data[corners], scheduler="threads")
        if not (np.allclose(pos[0], pos[2], rtol=0, atol=1e-9)
                and np.allclose(pos[1], pos[3], rtol=0, atol=1e-9)):
            raise describe("sky positions (corner RA/Dec, deg)",
                           np.round(pos[0].ravel(), 7).tolist(),
                           np.round(pos[2].ravel(), 7).tolist())


def _lazy_metrics(t, r) -> dict:
    """Dask graphs of the per-channel numbers of one product."""
    t = t.transpose("chan", ...)
    r = r.transpose(*t.dims).data.astype(np.float64)
    t = t.data.astype(np.float64)
    axes = tuple(range(1, t.ndim))  # every dim but chan
    tn, rn = np.isnan(t), np.isnan(r)
    diff = abs(t - r)
    diff = np.where(tn & rn, 0.0, np.where(tn | rn, np.inf, diff))
    return {
        "peak": np.nanmax(abs(r)),
        "max_abs": diff.max(axis=axes),
        "rms": np.sqrt((diff ** 2).mean(axis=axes)),
        "sum_test": np.nansum(t, axis=axes),
        "sum_ref": np.nansum(r, axis=axes),
    }


def _has_beam(ds, prod: str) -> bool:
    if "beam_major" not in ds or prod not in ds.beam_major["product"].values:
        return False
    return not bool(np.all(np.isnan(ds.beam_major.sel(product=prod).values)))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, float), np.asarray(den, float)
    out = np.full(num.shape, np.nan)
    nz = den != 0
    out[nz] = num[nz] / den[nz]
    out[(den == 0) & (num == 0)] = 1.0
    return out


def _beam_diff(prod: str, test, ref) -> BeamDiff:
    def get(ds, name):  # (stokes, chan) -> the per-channel value of the worst Stokes below
        return ds[name].sel(product=prod).transpose("stokes", "chan").values

    tmaj, tmin, tpa = (get(test, n) for n in ("beam_major", "beam_minor", "beam_pa"))
    rmaj, rmin, rpa = (get(ref, n) for n in ("beam_major", "beam_minor", "beam_pa"))
    dpa = (tpa - rpa + 90.0) % 180.0 - 90.0
    shape = _moment_rel(tmaj, tmin, tpa, rmaj, rmin, rpa)
    with np.errstate(invalid="ignore", divide="ignore"):
        major_rel, minor_rel = np.abs(tmaj - rmaj) / rmaj, np.abs(tmin - rmin) / rmin

    def worst(a):  # over Stokes: the entry of largest magnitude (NaN wins)
        a = np.asarray(a, float)
        key = np.where(np.isnan(a), np.inf, np.abs(a))
        return np.take_along_axis(a, np.argmax(key, axis=0)[None], axis=0)[0]

    return BeamDiff(product=prod, major_arcsec=rmaj[0], minor_arcsec=rmin[0], pa_deg=rpa[0],
                    d_major_arcsec=worst(tmaj - rmaj), d_minor_arcsec=worst(tmin - rmin),
                    d_pa_deg=worst(dpa), major_rel=worst(major_rel), minor_rel=worst(minor_rel),
                    shape_rel=worst(shape))


def _moment_rel(tmaj, tmin, tpa, rmaj, rmin, rpa) -> np.ndarray:
    """||S_test - S_ref|| / ||S_ref|| of the beams' second-moment matrices (Frobenius)."""
    def moments(maj, mnr, pa):
        th = np.deg2rad(pa)
        c, s = np.cos(th), np.sin(th)
        a, b = maj ** 2, mnr ** 2
        return a * s * s + b * c * c, a * c * c + b * s * s, (a - b) * s * c

    t = moments(tmaj, tmin, tpa)
    r = moments(rmaj, rmin, rpa)
    num = np.sqrt((t[0] - r[0]) ** 2 + (t[1] - r[1]) ** 2 + 2 * (t[2] - r[2]) ** 2)
    den = np.sqrt(r[0] ** 2 + r[1] ** 2 + 2 * r[2] ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den
