"""Channel-by-channel comparison of two image sets: pclean's against serial tclean's.

>>> report = compare_prefixes("cube", "cube.tclean")      # two existing sets
>>> print(report.table()); report.passed
>>> report = run_and_compare(dict(vis="x.ms", imagename="cube", specmode="cube", ...))

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

import csv
import json
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from pclean.dataset import open_dataset

DEFAULT_TOLERANCE = 1e-5
_FREQ_RTOL = 1e-9


@dataclass
class ProductDiff:
    """Per-channel differences of one product (arrays of length nchan)."""

    product: str
    units: str
    peak: float  # the reference's whole-cube peak |value|, the scale of the relative metrics
    max_abs: np.ndarray
    max_rel: np.ndarray
    rms_rel: np.ndarray
    flux_ratio: np.ndarray

    def worst(self) -> tuple[int, float]:
        """(channel, max_rel) of the worst channel."""
        vals = np.where(np.isnan(self.max_rel), np.inf, self.max_rel)
        chan = int(np.argmax(vals)) if len(vals) else 0
        return chan, float(self.max_rel[chan]) if len(vals) else 0.0


@dataclass
class BeamDiff:
    """Per-channel restoring-beam differences of one product (test - ref)."""

    product: str
    major_arcsec: np.ndarray  # the reference's beam
    minor_arcsec: np.ndarray
    pa_deg: np.ndarray
    d_major_arcsec: np.ndarray
    d_minor_arcsec: np.ndarray
    d_pa_deg: np.ndarray
    major_rel: np.ndarray
    minor_rel: np.ndarray
    shape_rel: np.ndarray

    def worst_rel(self) -> np.ndarray:
        """Per channel, the largest of major_rel, minor_rel and shape_rel."""
        stack = np.vstack([self.major_rel, self.minor_rel, self.shape_rel])
        return np.max(np.where(np.isnan(stack), np.inf, stack), axis=0)


@dataclass
class Report:
    test_prefix: str
    ref_prefix: str
    tolerance: float
    frequency_hz: np.ndarray
    spectral_frame: str
    channels: np.ndarray  # the channel numbers (of the image the sets were opened from)
    products: dict[str, ProductDiff]
    beams: dict[str, BeamDiff]
    missing: dict[str, str] = field(default_factory=dict)  # product -> "only in test/ref" etc.
    iterations: dict = field(default_factory=dict)  # {"test": {"iterdone", "nmajordone"}, "ref"}
    wall_time_s: dict = field(default_factory=dict)  # {"test": s, "ref": s}
    notes: list[str] = field(default_factory=list)

    @property
    def nchan(self) -> int:
        return len(self.frequency_hz)

    def failures(self) -> list[str]:
        """Why the comparison fails (empty if it passes)."""
        tol = self.tolerance
        out = []
        for prod, d in self.products.items():
            bad = np.flatnonzero(~(d.max_rel <= tol))
            if len(bad):
                chan, worst = d.worst()
                out.append(f".{prod}: max|diff|/peak > {tol:g} in {len(bad)} channel(s) "
                           f"(worst {worst:.3g} in channel {self.channels[chan]})")
        for prod, b in self.beams.items():
            bad = np.flatnonzero(~(b.worst_rel() <= tol))
            if len(bad):
                out.append(f".{prod} beam: relative difference > {tol:g} in {len(bad)} "
                           f"channel(s) (first: channel {self.channels[bad[0]]})")
        for prod, why in self.missing.items():
            out.append(f".{prod}: {why}")
        t, r = self.iterations.get("test") or {}, self.iterations.get("ref") or {}
        for key in ("iterdone", "nmajordone"):
            if t.get(key) is not None and r.get(key) is not None and t[key] != r[key]:
                out.append(f"{key}: {t[key]} (test) != {r[key]} (ref)")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures()

    # -- output ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON-able data; NaN is None, infinities are the strings 'inf'/'-inf'."""
        return _jsonable({
            "passed": self.passed,
            "failures": self.failures(),
            "test_prefix": self.test_prefix,
            "ref_prefix": self.ref_prefix,
            "tolerance": self.tolerance,
            "relative_to": "the reference product's whole-cube peak |value|",
            "spectral_frame": self.spectral_frame,
            "frequency_hz": self.frequency_hz,
            "channels": self.channels,
            "wall_time_s": self.wall_time_s,
            "iterations": self.iterations,
            "missing": self.missing,
            "notes": self.notes,
            "products": {p: vars(d) for p, d in self.products.items()},
            "beams": {p: vars(b) for p, b in self.beams.items()},
        })

    def to_json(self, path: str) -> str:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1, allow_nan=False)
        return path

    def rows(self) -> list[dict]:
        """One row per product and channel (the CSV's rows)."""
        rows = []
        for prod, d in self.products.items():
            b = self.beams.get(prod)
            for c in range(self.nchan):
                row = {"product": prod, "chan": int(self.channels[c]),
                       "frequency_hz": self.frequency_hz[c],
                       "peak_ref": d.peak, "max_abs": d.max_abs[c], "max_rel": d.max_rel[c],
                       "rms_rel": d.rms_rel[c], "flux_ratio": d.flux_ratio[c]}
                for key in ("d_major_arcsec", "d_minor_arcsec", "d_pa_deg", "major_rel",
                            "minor_rel", "shape_rel"):
                    row["beam_" + key] = getattr(b, key)[c] if b is not None else float("nan")
                ok = d.max_rel[c] <= self.tolerance
                if b is not None:
                    ok = ok and b.worst_rel()[c] <= self.tolerance
                row["passed"] = bool(ok)
                rows.append(row)
        return rows

    def to_csv(self, path: str) -> str:
        rows = self.rows()
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["product"])
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (repr(float(v)) if isinstance(v, (float, np.floating))
                                     else v) for k, v in row.items()})
        return path

    def table(self, max_channels: int = 40) -> str:
        """A readable summary: one line per product, then max|diff|/peak per channel."""
        tol = self.tolerance
        lines = [f"pclean compare: test {self.test_prefix}  vs  ref {self.ref_prefix}",
                 f"tolerance {tol:g} of each product's reference peak; {self.nchan} channels "
                 f"({self.spectral_frame})", ""]
        head = f"{'product':<12} {'ref peak':>11} {'max|d|/peak':>12} {'chan':>5} " \
               f"{'rms/peak':>10} {'flux ratio':>21} {'beam rel':>9}  ok"
        lines += [head, "-" * len(head)]
        for prod, d in self.products.items():
            chan, worst = d.worst()
            fr = d.flux_ratio[np.isfinite(d.flux_ratio)]
            frs = f"{fr.min():.7f}-{fr.max():.7f}" if len(fr) else "n/a"
            b = self.beams.get(prod)
            brel = f"{np.max(b.worst_rel()):.2e}" if b is not None and self.nchan else "-"
            ok = np.all(d.max_rel <= tol) and (b is None or np.all(b.worst_rel() <= tol))
            lines.append(f"{prod:<12} {d.peak:>11.4g} {worst:>12.3e} {self.channels[chan]:>5} "
                         f"{np.nanmax(d.rms_rel) if self.nchan else 0:>10.3e} {frs:>21} "
                         f"{brel:>9}  {'yes' if ok else 'NO'}")
        for prod, why in self.missing.items():
            lines.append(f"{prod:<12} {why}")
        if self.products and self.nchan:
            lines += ["", "max|diff|/peak per channel"
                      + (f" (the {max_channels} worst channels)" if self.nchan > max_channels
                         else "") + ":"]
            prods = list(self.products)
            head = f"{'chan':>5} {'freq (Hz)':>16} " + " ".join(f"{p[:10]:>10}" for p in prods)
            if self.beams:
                head += " " + f"{'dmaj(as)':>10} {'dmin(as)':>9} {'dPA(deg)':>8}"
            lines += [head, "-" * len(head)]
            worst = np.max(np.vstack([np.where(np.isnan(d.max_rel), np.inf, d.max_rel)
                                      for d in self.products.values()]), axis=0)
            chans = range(self.nchan)
            if self.nchan > max_channels:
                chans = sorted(np.argsort(-worst, kind="stable")[:max_channels])
            bprod = "image" if "image" in self.beams else next(iter(self.beams), None)
            for c in chans:
                line = f"{self.channels[c]:>5} {self.frequency_hz[c]:>16.3f} " + " ".join(
                    f"{self.products[p].max_rel[c]:>10.2e}" for p in prods)
                if bprod is not None:
                    b = self.beams[bprod]
                    line += (f" {b.d_major_arcsec[c]:>10.2e} {b.d_minor_arcsec[c]:>9.2e} "
                             f"{b.d_pa_deg[c]:>8.2e}")
                lines.append(line)
            if bprod is not None:
                lines.append(f"(beam differences: .{bprod}, test - ref)")
        lines.append("")
        for side in ("test", "ref"):
            it = self.iterations.get(side) or {}
            wt = self.wall_time_s.get(side)
            if it or wt is not None:
                lines.append(f"{side:>4}: iterdone={it.get('iterdone')} "
                             f"nmajordone={it.get('nmajordone')}"
                             + (f"  wall time {wt:.2f} s" if wt is not None else ""))
        if self.notes:
            lines += ["notes:"] + [f"  {n}" for n in self.notes]
        fails = self.failures()
        lines.append("PASS" if not fails else "FAIL: " + "; ".join(fails))
        return "\n".join(lines)

    def plot(self, path: str) -> str:
        """PNG: per-channel max|diff|/peak and rms/peak per product, and beam differences."""
        from matplotlib.figure import Figure  # no pyplot: renders with Agg, no display needed

        floor = 1e-12  # zeros are drawn at this floor of the log axes
        fig = Figure(figsize=(10, 9), layout="constrained")
        axes = fig.subplots(3, 1, sharex=True)
        chans = self.channels
        for prod, d in self.products.items():
            line, = axes[0].plot(chans, np.clip(_finite(d.max_rel), floor, None), ".-",
                                 label=f".{prod}")
            axes[1].plot(chans, np.clip(_finite(d.rms_rel), floor, None), ".-",
                         color=line.get_color(), label=f".{prod}")
        labels = ("max |test - ref| / ref peak", "rms(test - ref) / ref peak")
        for ax, what in zip(axes[:2], labels):
            ax.axhline(self.tolerance, color="k", ls="--", lw=1, label="tolerance")
            ax.set_yscale("log")
            ax.set_ylabel(what)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize="small", ncols=4)
        axes[0].set_title(f"{'PASS' if self.passed else 'FAIL'}: {self.test_prefix} vs "
                          f"{self.ref_prefix} (zeros drawn at {floor:g})")
        ax = axes[2]
        if self.beams:
            twin = ax.twinx()
            for prod, b in self.beams.items():
                ax.plot(chans, b.d_major_arcsec, ".-", label=f".{prod} d major")
                ax.plot(chans, b.d_minor_arcsec, ".--", label=f".{prod} d minor")
                twin.plot(chans, b.d_pa_deg, "x:", label=f".{prod} d PA")
            ax.set_ylabel("beam axis difference (arcsec)")
            twin.set_ylabel("beam PA difference (deg)")
            handles = ax.get_legend_handles_labels()
            more = twin.get_legend_handles_labels()
            ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize="small", ncols=3)
        else:
            ax.text(0.5, 0.5, "no restoring beams", ha="center", transform=ax.transAxes)
        ax.grid(alpha=0.3)
        ax.set_xlabel("channel")
        fig.savefig(path, dpi=100)
        return path

    def save(self, prefix: str) -> list[str]:
        """Write ``prefix.json``, ``prefix.csv`` and ``prefix.png``; return the paths."""
        return [self.to_json(prefix + ".json"), self.to_csv(prefix + ".csv"),
                self.plot(prefix + ".png")]


# ---------------------------------------------------------------------------------------------
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
    test, ref = open_dataset(test_prefix, products), open_dataset(ref_prefix, products)
    report = compare_datasets(test, ref, tolerance, names=(str(test_prefix), str(ref_prefix)))
    report.missing.update(_pixel_mask_differences(test_prefix, ref_prefix, test, ref))
    return report


def _pixel_mask_differences(test_prefix, ref_prefix, test, ref) -> dict[str, str]:
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
    tm, rm = open_dataset(test_prefix, same, masked=True), open_dataset(ref_prefix, same,
                                                                        masked=True)
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


def _finite(a) -> np.ndarray:
    a = np.asarray(a, float)
    return np.where(np.isinf(a), 1e300, a)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# ---------------------------------------------------------------------------------------------
def run_and_compare(params: dict, ref_prefix: str | None = None,
                    tolerance: float = DEFAULT_TOLERANCE,
                    report_prefix: str | None = None) -> Report:
    """Run serial tclean and pclean with the same parameters, then compare their products.

    params: pclean()'s parameters (tclean's plus pclean's own); tclean receives the tclean ones
        with ``imagename=ref_prefix`` (default ``<imagename>.tclean``), pclean all of them.
    report_prefix: if given, also write ``.json``, ``.csv`` and ``.png`` reports there.

    tclean runs first, then pclean; both wall times and both runs' ``iterdone``/``nmajordone``
    go into the report. Existing outputs of either run are refused before anything runs
    (tclean would otherwise continue from them).
    """
    from pclean import casaenv, params as pparams, schema
    from pclean.task import pclean

    params = dict(params)
    if not params.get("imagename"):
        raise ValueError("imagename: an output image name is required")
    test_prefix = str(params["imagename"])
    ref_prefix = str(ref_prefix or test_prefix + ".tclean")
    if os.path.abspath(ref_prefix) == os.path.abspath(test_prefix):
        raise ValueError("ref_prefix must differ from imagename")
    existing = [f"{ref_prefix}.{p}" for p in pparams.PRODUCTS
                if os.path.exists(f"{ref_prefix}.{p}")]
    if existing:
        raise FileExistsError("tclean's output images exist: " + ", ".join(existing)
                              + " (remove them, choose another ref_prefix, or compare existing "
                              "sets with compare_prefixes)")
    pparams.normalize(schema.bind((), params))  # bad pclean/tclean input: fail before running

    tclean_names = {p.name for p in schema.tclean_params()}
    tclean_args = {k: v for k, v in params.items() if k in tclean_names}
    tclean_args["imagename"] = ref_prefix
    casaenv.configure()
    from casatasks import tclean

    t0 = time.perf_counter()
    ref_result = tclean(**tclean_args) or {}
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_result = pclean(**params) or {}
    t_test = time.perf_counter() - t0

    report = compare_prefixes(test_prefix, ref_prefix, tolerance)
    report.wall_time_s = {"test": t_test, "ref": t_ref}
    report.iterations = {"test": _iterations(test_result), "ref": _iterations(ref_result)}
    if report_prefix:
        report.save(report_prefix)
    return report


def _iterations(result: dict) -> dict:
    out = {}
    for key in ("iterdone", "nmajordone"):
        value = result.get(key) if isinstance(result, dict) else None
        out[key] = int(value) if value is not None else None
    return out
