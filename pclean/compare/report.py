"""The result of comparing two image sets, and how it is shown: a table, JSON, CSV, a plot.

(``metrics`` computes it; see the package doc for what the numbers mean.)"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field

import numpy as np

from pclean.jsonable import jsonable

DEFAULT_TOLERANCE = 1e-5


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
        return jsonable({
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
        """PNG of ``figure()``; returns the path."""
        self.figure().savefig(path, dpi=100)
        return path

    def figure(self):
        """Per-channel max|diff|/peak and rms/peak per product, and beam differences."""
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
        return fig

    def save(self, prefix: str) -> list[str]:
        """Write ``prefix.json``, ``prefix.csv`` and ``prefix.png``; return the paths."""
        return [self.to_json(prefix + ".json"), self.to_csv(prefix + ".csv"),
                self.plot(prefix + ".png")]


def _finite(a) -> np.ndarray:
    a = np.asarray(a, float)
    return np.where(np.isinf(a), 1e300, a)
