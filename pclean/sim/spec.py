"""Varied small MeasurementSets for differential fuzzing (pclean against serial tclean).

A :class:`DataSpec` describes one dataset: the array, its spectral windows (frame label,
ascending or descending channels, gaps and overlaps between windows), correlations, fields,
timing (snapshots, unevenly spaced integrations), the sky (polarized point sources with spectral
indices and an optional Gaussian spectral line), noise and flags. :func:`pclean.sim.build.build` writes it with ``casatools.simulator`` deterministically from
its seed, :func:`pclean.sim.draw.draw` draws a random one, and :func:`imaging_geometry` gives an image size and cell that hold its sources.

Written by :mod:`pclean.sim.build` (``build``, ``build_cached``); drawn at random by
:mod:`pclean.sim.draw`; :mod:`pclean.sim.data` gathers the three.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from pclean import casa

# bump when build() would write something different for the same spec (invalidates caches)
# 2: spectral-index sources get all four Stokes indices (version 1 read past the end of a
#    one-element vector in sm.predict: Q/U garbage depending on the process's history)
GENERATOR_VERSION = 2

C_M_S = 299792458.0
ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
FRAMES = ("LSRK", "TOPO", "BARY")
# casacore MFrequency type codes, as stored in SPECTRAL_WINDOW.MEAS_FREQ_REF
FRAME_CODES = {"REST": 0, "LSRK": 1, "LSRD": 2, "BARY": 3, "GEO": 4, "TOPO": 5}
CORRS = ("XX YY", "RR LL", "XX XY YX YY", "RR RL LR LL")
IMSIZES = (32, 36, 40, 48, 50, 54, 60, 64, 72, 80, 90, 96)  # sizes FFTs like


# ---------------------------------------------------------------------------------------------
# the description of a dataset

@dataclass
class Spw:
    nchan: int
    freq_start_hz: float  # centre of the first channel
    width_hz: float  # negative: descending channels
    frame: str = "LSRK"  # the frame the window is labelled in

    def chan_freqs(self) -> np.ndarray:
        return self.freq_start_hz + self.width_hz * np.arange(self.nchan)

    def edges(self) -> tuple[float, float]:
        f = self.chan_freqs()
        half = abs(self.width_hz) / 2
        return float(f.min() - half), float(f.max() + half)


@dataclass
class Flags:
    antennas: list = field(default_factory=list)  # names or ANTENNA row indices
    baselines: list = field(default_factory=list)  # (a, b), names or indices
    time_ranges: list = field(default_factory=list)  # (t0, t1) fractions of the observation
    channels: dict = field(default_factory=dict)  # spw index in spec.spws -> channels, all rows
    rows_fraction: float = 0.0  # rows flagged at random (FLAG_ROW and all of FLAG)


@dataclass
class Source:
    ra_offset_arcsec: float  # from spec.direction, on the sky
    dec_offset_arcsec: float
    flux_jy: float  # Stokes I at spec.ref_freq_hz
    spectral_index: float = 0.0
    pol: tuple = (0.0, 0.0, 0.0)  # Q/I, U/I, V/I


@dataclass
class Line:
    """A point source whose spectrum is a Gaussian line on a flat continuum (unpolarized)."""
    ra_offset_arcsec: float
    dec_offset_arcsec: float
    peak_jy: float
    center_hz: float
    fwhm_hz: float
    continuum_jy: float = 0.0

    def flux(self, freq_hz):
        sigma = self.fwhm_hz / (2 * math.sqrt(2 * math.log(2)))
        return self.continuum_jy + self.peak_jy * np.exp(
            -0.5 * ((np.asarray(freq_hz) - self.center_hz) / sigma) ** 2)


@dataclass
class DataSpec:
    config: str = "vla.d.cfg"  # antenna list under casadata's alma/simmos
    max_antennas: int = 30  # longer lists are subsampled evenly (in file order) to this
    spws: list = field(default_factory=lambda: [Spw(8, 1.0e9, 4.0e6)])
    corr: str = "XX YY"  # one of CORRS
    # (name, ra offset arcsec, dec offset arcsec) from `direction`; field 0 is normally at 0, 0
    fields: list = field(default_factory=lambda: [("F0", 0.0, 0.0)])
    direction: tuple = ("J2000", "180.0deg", "40.0deg")
    epoch: str = "2024/06/01/00:00:00"  # UTC day; the observation is centred on transit
    hours: float = 0.5
    integration_s: float = 60.0
    scans_per_field: int = 1  # fields are observed in turn, this many scans each
    drop_rows_fraction: float = 0.0  # fraction of integrations deleted (all their rows)
    sources: list = field(default_factory=lambda: [Source(0.0, 0.0, 1.0, -0.7)])
    line: Line | None = None
    ref_freq_hz: float | None = None  # where Source fluxes hold; default: middle of all spws
    noise_jy: float = 0.01  # per real and per imaginary part of one visibility
    flags: Flags = field(default_factory=Flags)
    split_spws: bool = False  # one MS per spw instead of one MS with all
    seed: int = 0

    def freq_range(self) -> tuple[float, float]:
        edges = [s.edges() for s in self.spws]
        return min(e[0] for e in edges), max(e[1] for e in edges)

    def reference_freq(self) -> float:
        if self.ref_freq_hz:
            return float(self.ref_freq_hz)
        lo, hi = self.freq_range()
        return (lo + hi) / 2


def to_dict(spec: DataSpec) -> dict:
    return dataclasses.asdict(spec)


def from_dict(d: dict) -> DataSpec:
    """Inverse of :func:`to_dict`, also after a JSON round trip (lists for tuples, str keys)."""
    d = dict(d)
    d["spws"] = [Spw(**s) for s in d["spws"]]
    d["sources"] = [Source(**{**s, "pol": tuple(s["pol"])}) for s in d["sources"]]
    d["line"] = Line(**d["line"]) if d.get("line") else None
    fl = dict(d["flags"])
    fl["channels"] = {int(k): list(v) for k, v in fl["channels"].items()}
    fl["baselines"] = [tuple(b) for b in fl["baselines"]]
    fl["time_ranges"] = [tuple(t) for t in fl["time_ranges"]]
    d["flags"] = Flags(**fl)
    d["fields"] = [tuple(f) for f in d["fields"]]
    d["direction"] = tuple(d["direction"])
    return DataSpec(**d)


def fingerprint(spec: DataSpec) -> str:
    """A stable hash of everything build() depends on."""
    text = json.dumps({"generator": GENERATOR_VERSION, "spec": to_dict(spec)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def stokes_options(corr: str) -> list[str]:
    """tclean ``stokes`` values the correlations allow."""
    if len(corr.split()) == 4:
        return ["I", "IV", "IQ", "QU", "IQUV"]
    return ["I", "IV"] if corr.startswith("R") else ["I", "IQ"]


# ---------------------------------------------------------------------------------------------
# antennas, timing, geometry

@dataclass(frozen=True)
class Layout:
    telescope: str
    names: tuple
    xyz: np.ndarray  # (nant, 3) metres, ITRF
    diameters: np.ndarray

    @property
    def nbaselines(self) -> int:
        n = len(self.names)
        return n * (n - 1) // 2

    def _lengths(self) -> np.ndarray:
        i, j = np.triu_indices(len(self.names), 1)
        return np.sqrt(((self.xyz[i] - self.xyz[j]) ** 2).sum(-1))

    @property
    def bmax_m(self) -> float:
        return float(self._lengths().max())

    @property
    def brms_m(self) -> float:
        return float(np.sqrt((self._lengths() ** 2).mean()))


@functools.lru_cache(maxsize=None)
def layout(config: str, max_antennas: int = 30) -> Layout:
    """The antenna list of ``config``, subsampled evenly (file order) to ``max_antennas``."""
    casa.tools()
    import casadata
    from casatasks.private.simutil import simutil

    path = os.path.join(casadata.datapath, "alma", "simmos", config)
    x, y, z, diam, names, _pads, telescope, _posobs = simutil().readantenna(path)
    keep = np.unique(np.round(np.linspace(0, len(x) - 1, min(len(x), max_antennas))).astype(int))
    xyz = np.array([x, y, z], dtype=float).T[keep]
    return Layout(telescope, tuple(str(names[i]) for i in keep), xyz,
                  np.asarray(diam, dtype=float)[keep])


def schedule(spec: DataSpec) -> list[tuple[int, float, int]]:
    """(field index, start seconds from transit, integrations) per scan. The observation of
    ``hours`` is split into len(fields) * scans_per_field scans of whole integrations, each at
    least one (so a short enough observation is one integration per field)."""
    nscans = len(spec.fields) * spec.scans_per_field
    total = max(1, round(spec.hours * 3600 / spec.integration_s))
    per_scan = max(1, round(total / nscans))
    length = per_scan * spec.integration_s
    start = -nscans * length / 2
    return [(k % len(spec.fields), start + k * length, per_scan) for k in range(nscans)]


def nrows(spec: DataSpec) -> int:
    """Rows build() writes in all its MSs, before integrations are dropped."""
    lay = layout(spec.config, spec.max_antennas)
    return lay.nbaselines * len(spec.spws) * sum(nint for _f, _s, nint in schedule(spec))


def primary_beam_arcsec(spec: DataSpec) -> float:
    """FWHM of the primary beam of the largest dish at the highest frequency."""
    lay = layout(spec.config, spec.max_antennas)
    return 1.13 * C_M_S / spec.freq_range()[1] / float(lay.diameters.max()) * ARCSEC_PER_RAD


def imaging_geometry(spec: DataSpec) -> dict:
    """imsize (32-96) and cell for tclean. The cell is lambda_min / Bmax / 5; the image holds
    every source and field centre with a margin, and spans at least 8 synthesized beams
    (lambda_max / rms baseline: a broad beam of a centrally condensed array otherwise fills
    the image and tclean's PSF fit fails). Where 96 pixels cannot, the cell grows, up to
    Nyquist for the longest baseline for the beams and as far as needed for the sources."""
    lay = layout(spec.config, spec.max_antennas)
    lo, hi = spec.freq_range()
    cell = C_M_S / hi / lay.bmax_m / 5 * ARCSEC_PER_RAD
    offsets = [(s.ra_offset_arcsec, s.dec_offset_arcsec) for s in spec.sources]
    offsets += [(f[1], f[2]) for f in spec.fields]
    if spec.line:
        offsets.append((spec.line.ra_offset_arcsec, spec.line.dec_offset_arcsec))
    reach = max(max(abs(a), abs(b)) for a, b in offsets)
    span_sources = 2 * (1.25 * reach + 6 * cell)  # arcsec across
    span_beams = 8 * C_M_S / lo / lay.brms_m * ARCSEC_PER_RAD
    largest = IMSIZES[-1]
    cell = max(cell, min(span_beams / largest, 2.5 * cell), span_sources / largest)
    need = max(span_sources, span_beams) / cell
    imsize = next((n for n in IMSIZES if n >= need), largest)
    return {"imsize": imsize, "cell": f"{cell:.4g}arcsec"}


def _offset_direction(ra_deg, dec_deg, dra_arcsec, ddec_arcsec):
    dec = dec_deg + ddec_arcsec / 3600.0
    ra = (ra_deg + dra_arcsec / 3600.0 / math.cos(math.radians(dec_deg))) % 360.0
    return ra, dec


# ---------------------------------------------------------------------------------------------
# building

def _ms_names(spec: DataSpec) -> list[tuple[str, list[int]]]:
    """(MS file name, indices into spec.spws it holds)."""
    if spec.split_spws:
        return [(f"data_spw{i}.ms", [i]) for i in range(len(spec.spws))]
    return [("data.ms", list(range(len(spec.spws))))]


def validate(spec: DataSpec) -> None:
    """Raise ValueError for a spec build() cannot honour."""
    names = list(layout(spec.config, spec.max_antennas).names)
    problems = []
    if spec.corr not in CORRS:
        problems.append(f"corr {spec.corr!r} is not one of {CORRS}")
    if not spec.spws or not spec.fields or not spec.sources:
        problems.append("a spec needs at least one spw, one field and one source")
    if len({f[0] for f in spec.fields}) != len(spec.fields):
        problems.append("field names must differ")
    for i, s in enumerate(spec.spws):
        if s.frame not in FRAME_CODES or s.nchan < 1 or s.width_hz == 0 or s.edges()[0] <= 0:
            problems.append(f"spw {i}: {s}")
    for k, chans in spec.flags.channels.items():
        if not 0 <= k < len(spec.spws) or any(not 0 <= c < spec.spws[k].nchan for c in chans):
            problems.append(f"flagged channels {chans} of spw {k}")
    for ref in list(spec.flags.antennas) + [a for b in spec.flags.baselines for a in b]:
        if (ref not in names) if isinstance(ref, str) else not 0 <= int(ref) < len(names):
            problems.append(f"antenna {ref!r} is not in {spec.config} ({len(names)} antennas)")
    if problems:
        raise ValueError("; ".join(problems))
