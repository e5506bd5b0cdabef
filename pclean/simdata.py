"""Varied small MeasurementSets for differential fuzzing (pclean against serial tclean).

A :class:`DataSpec` describes one dataset: the array, its spectral windows (frame label,
ascending or descending channels, gaps and overlaps between windows), correlations, fields,
timing (snapshots, unevenly spaced integrations), the sky (polarized point sources with spectral
indices and an optional Gaussian spectral line), noise and flags. :func:`build` writes it with
``casatools.simulator`` deterministically from its seed, :func:`draw` draws a random one, and
:func:`imaging_geometry` gives an image size and cell that hold its sources.

CASA quirks worked around (casatools 6.7.0.31), each seen on a built MS:

* ``sm.setspwindow(refcode=...)``: every spectral window ends up labelled with the frame of the
  *last* call (spws set up as LSRK then TOPO are both TOPO). MEAS_FREQ_REF is rewritten per spw.
* a descending window (negative ``deltafreq``) gets negative EFFECTIVE_BW, RESOLUTION and
  TOTAL_BANDWIDTH, even with a positive ``freqresolution``; the MS definition has them positive
  (only CHAN_WIDTH carries the sign), so they are rewritten as absolute values.
* ``sm.setnoise(mode='simplenoise')`` + ``sm.corrupt()`` adds noise (sigma per real and per
  imaginary part) to the parallel hands only: XY/YX (RL/LR) stay noiseless. Noise of the same
  sigma is added to the cross hands here, from the spec's seed.
* a component given ``spectrumtype="spectral index"`` by ``cl.addcomponent`` holds a
  one-element Stokes index vector, and ``sm.predict`` (casacore's
  ``SpectralIndex::sampleStokes`` over the channels) reads three more elements past its end:
  leftover heap bytes, zero in a fresh process but garbage after earlier CASA work, turned
  into a rotation measure and spectral indices of Q, U and V, so the predicted Q/U (even NaN)
  depended on what had run before in the process. ``cl.setstokesspectrum`` with all four
  indices (:func:`pclean.simulate.add_point_source`) avoids it.
* ``sm.setlimits`` flags shadowed antennas and low elevations; the limits are set so nothing is
  flagged (shadowlimit=1, elevationlimit=0deg), so FLAG holds exactly what the spec asks.
* ``sm.observe`` of a scan that is not a whole number of integrations writes a last integration
  running past the stop time, overlapping the next scan: scans here are whole integrations.
* ``sm.predict`` segfaults for an array of mixed dish sizes (CARMA's 10.4 m and 6.1 m), with
  or without ``sm.setvp``: the simulation uses one size, ANTENNA.DISH_DIAMETER is set after.
* ``tb.removerows`` refuses the simulator's MS (its TiledShapeStMan columns cannot lose rows);
  integrations are dropped by a deep copy of the rows that stay.
* without ``sm.setvp`` the prediction has no primary beam; sources are kept well inside it.
* the simulator writes WEIGHT = SIGMA = 1 whatever the noise, CORRECTED_DATA equal to DATA and
  MODEL_DATA of ones; left as they are.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass, field

import numpy as np

from pclean import casaenv
from pclean.simulate import add_point_source

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
    casaenv.tools()
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


def build(spec: DataSpec, directory: str) -> list[str]:
    """Write the MS(s) of ``spec`` under ``directory`` (replacing MSs of the same names) and
    return their paths: one, or one per spw with ``split_spws``."""
    validate(spec)
    os.makedirs(directory, exist_ok=True)
    # integrations to delete: the same times in every MS of a split build
    times = _drop_choice(spec)
    paths = []
    for k, (name, spw_ids) in enumerate(_ms_names(spec)):
        path = os.path.join(directory, name)
        shutil.rmtree(path, ignore_errors=True)
        _simulate(spec, path, spw_ids, k)
        _fix_subtables(spec, path, spw_ids)
        _noise_cross_hands(spec, path, k)
        _number_scans(spec, path)
        _drop_integrations(spec, path, times)
        _apply_flags(spec, path, spw_ids, k)
        paths.append(path)
    return paths


def build_cached(spec: DataSpec, cache_dir: str) -> list[str]:
    """build() into ``cache_dir/<fingerprint>``, reusing an earlier build. The build goes to a
    temporary name renamed at the end, so an interrupted build never stands under the final
    name (and of two concurrent builds of one spec the first rename wins)."""
    final = os.path.join(cache_dir, fingerprint(spec))
    names = [name for name, _ in _ms_names(spec)]
    if not os.path.isdir(final):
        os.makedirs(cache_dir, exist_ok=True)
        tmp = os.path.join(cache_dir, f".{fingerprint(spec)}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        try:
            build(spec, tmp)
            with open(os.path.join(tmp, "spec.json"), "w") as f:
                json.dump(to_dict(spec), f, indent=1, sort_keys=True)
            try:
                os.rename(tmp, final)
            except OSError:
                if not os.path.isdir(final):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return [os.path.join(final, n) for n in names]


def _simulate(spec: DataSpec, path: str, spw_ids: list[int], ms_index: int) -> None:
    ct = casaenv.tools()
    me, qa = ct.measures(), ct.quanta()
    lay = layout(spec.config, spec.max_antennas)
    frame, ra, dec = spec.direction
    ra0 = qa.convert(qa.quantity(ra), "deg")["value"]
    dec0 = qa.convert(qa.quantity(dec), "deg")["value"]
    feed = "perfect X Y" if "X" in spec.corr else "perfect R L"
    sm, cl = ct.simulator(), ct.componentlist()
    clname = path + ".cl"
    shutil.rmtree(clname, ignore_errors=True)
    try:
        sm.open(path)
        # one dish size for all: sm.predict segfaults on an array of mixed dishes (CARMA),
        # with or without sm.setvp; ANTENNA.DISH_DIAMETER gets the real ones afterwards
        # (no primary beam is applied, so the visibilities do not depend on it)
        sm.setconfig(telescopename=lay.telescope, x=lay.xyz[:, 0], y=lay.xyz[:, 1],
                     z=lay.xyz[:, 2], dishdiameter=[float(lay.diameters.max())] * len(lay.names),
                     mount=["alt-az"],
                     antname=list(lay.names), coordsystem="global",
                     referencelocation=me.observatory(lay.telescope))
        for i in spw_ids:
            s = spec.spws[i]
            sm.setspwindow(spwname=f"spw{i}", freq=f"{s.freq_start_hz!r}Hz",
                           deltafreq=f"{s.width_hz!r}Hz", freqresolution=f"{abs(s.width_hz)!r}Hz",
                           refcode=s.frame, nchannels=s.nchan, stokes=spec.corr)
        sm.setfeed(mode=feed)
        for name, dra, ddec in spec.fields:
            fra, fdec = _offset_direction(ra0, dec0, dra, ddec)
            sm.setfield(sourcename=name, sourcedirection=me.direction(frame, f"{fra!r}deg",
                                                                      f"{fdec!r}deg"))
        sm.setlimits(shadowlimit=1.0, elevationlimit="0deg")  # flag nothing (see module doc)
        sm.setauto(autocorrwt=0.0)
        sm.settimes(integrationtime=f"{spec.integration_s!r}s", usehourangle=True,
                    referencetime=me.epoch("UTC", spec.epoch))
        for fld, start, nint in schedule(spec):
            for i in spw_ids:  # simultaneous in every spw
                sm.observe(sourcename=spec.fields[fld][0], spwname=f"spw{i}",
                           starttime=f"{start!r}s",
                           stoptime=f"{start + nint * spec.integration_s!r}s")

        ref = spec.reference_freq()
        for s in spec.sources:
            sra, sdec = _offset_direction(ra0, dec0, s.ra_offset_arcsec, s.dec_offset_arcsec)
            q, u, v = s.pol
            # all four Stokes indices set: see simulate.add_point_source and the module doc
            add_point_source(cl, f"{frame} {sra!r}deg {sdec!r}deg",
                             [s.flux_jy, q * s.flux_jy, u * s.flux_jy, v * s.flux_jy], ref,
                             s.spectral_index)
        if spec.line:
            ln = spec.line
            sra, sdec = _offset_direction(ra0, dec0, ln.ra_offset_arcsec, ln.dec_offset_arcsec)
            lo, hi = spec.freq_range()
            # tabular spectrum sampled finely over all spws and a margin (interpolated between)
            n = int(min(4000, max(64, 10 * (hi - lo) / ln.fwhm_hz)))
            freqs = np.linspace(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo), n)
            cl.addcomponent(dir=f"{frame} {sra!r}deg {sdec!r}deg", flux=1.0, fluxunit="Jy",
                            freq=f"{ln.center_hz!r}Hz", shape="point")
            cl.setspectrum(which=cl.length() - 1, type="tabular", tabularfreqs=freqs.tolist(),
                           tabularflux=ln.flux(freqs).tolist(), tabularframe="LSRK")
        cl.rename(clname)
        cl.close()
        sm.predict(complist=clname)
        if spec.noise_jy > 0:
            sm.setseed(int(spec.seed) * 1000 + ms_index)
            sm.setnoise(mode="simplenoise", simplenoise=f"{spec.noise_jy!r}Jy")
            sm.corrupt()
    finally:
        sm.close()
        cl.done()
        shutil.rmtree(clname, ignore_errors=True)


def _fix_subtables(spec: DataSpec, path: str, spw_ids: list[int]) -> None:
    tb = casaenv.tools().table()
    diameters = layout(spec.config, spec.max_antennas).diameters
    if len(set(diameters)) > 1:
        tb.open(os.path.join(path, "ANTENNA"), nomodify=False)
        tb.putcol("DISH_DIAMETER", diameters)
        tb.close()
    tb.open(os.path.join(path, "SPECTRAL_WINDOW"), nomodify=False)
    try:
        for row, i in enumerate(spw_ids):
            tb.putcell("MEAS_FREQ_REF", row, FRAME_CODES[spec.spws[i].frame])
            for col in ("EFFECTIVE_BW", "RESOLUTION"):
                tb.putcell(col, row, np.abs(tb.getcell(col, row)))
            tb.putcell("TOTAL_BANDWIDTH", row, abs(tb.getcell("TOTAL_BANDWIDTH", row)))
    finally:
        tb.close()


def _noise_cross_hands(spec: DataSpec, path: str, ms_index: int) -> None:
    if spec.noise_jy <= 0 or len(spec.corr.split()) != 4:
        return
    rng = np.random.default_rng([spec.seed, 1, ms_index])
    tb = casaenv.tools().table()
    tb.open(path, nomodify=False)
    try:
        for dd in np.unique(tb.getcol("DATA_DESC_ID")):
            sub = tb.query(f"DATA_DESC_ID=={dd}")
            data = sub.getcol("DATA")
            shape = data[1:3].shape
            data[1:3] += spec.noise_jy * (rng.standard_normal(shape)
                                          + 1j * rng.standard_normal(shape))
            sub.putcol("DATA", data)
            if "CORRECTED_DATA" in sub.colnames():
                sub.putcol("CORRECTED_DATA", data)
            sub.close()
    finally:
        tb.close()


def _drop_choice(spec: DataSpec) -> list[tuple[int, int]]:
    """(scan, integration within it) to delete: ``drop_rows_fraction`` of each scan's
    integrations, never its first or last, so every scan keeps data and its time span."""
    if spec.drop_rows_fraction <= 0:
        return []
    rng = np.random.default_rng([spec.seed, 2])
    out = []
    for k, (_fld, _start, nint) in enumerate(schedule(spec)):
        inner = np.arange(1, nint - 1)
        n = min(len(inner), round(spec.drop_rows_fraction * nint))
        out += [(k, int(j)) for j in rng.choice(inner, size=n, replace=False)]
    return out


def _integration_index(spec: DataSpec) -> list[int]:
    """Index, among the MS's distinct times, of each scan's first integration."""
    counts = [nint for _f, _s, nint in schedule(spec)]
    return [int(c) for c in np.cumsum([0] + counts[:-1])]


def _number_scans(spec: DataSpec, path: str) -> None:
    """SCAN_NUMBER by scan of the schedule: the simulator numbers every sm.observe call, so
    simultaneous spws of one scan got different scan numbers."""
    tb = casaenv.tools().table()
    tb.open(path, nomodify=False)
    try:
        time = tb.getcol("TIME")
        distinct = np.unique(time)
        scan_of_time = np.repeat(np.arange(1, len(schedule(spec)) + 1),
                                 [nint for _f, _s, nint in schedule(spec)])
        if len(distinct) != len(scan_of_time):
            raise RuntimeError(f"{path}: {len(distinct)} integrations, the schedule has "
                               f"{len(scan_of_time)}")
        tb.putcol("SCAN_NUMBER", scan_of_time[np.searchsorted(distinct, time)].astype(np.int32))
    finally:
        tb.close()


def _drop_integrations(spec: DataSpec, path: str, choice: list[tuple[int, int]]) -> None:
    if not choice:
        return
    tb = casaenv.tools().table()
    tmp = path.rstrip("/") + ".dropping"
    shutil.rmtree(tmp, ignore_errors=True)
    tb.open(path)
    try:
        time = tb.getcol("TIME")
        distinct = np.unique(time)
        first = _integration_index(spec)
        gone = distinct[[first[k] + j for k, j in choice]]
        # tb.removerows fails on the simulator's MS ("its storage managers do not support
        # it": DATA, FLAG, ... are in TiledShapeStMan); a deep copy of the rows to keep,
        # subtables included, replaces it instead
        keep = tb.selectrows(np.flatnonzero(~np.isin(time, gone)).tolist())
        keep.copy(tmp, deep=True, valuecopy=True).close()
        keep.close()
    finally:
        tb.close()
    shutil.rmtree(path)
    os.rename(tmp, path)


def _antenna_index(ref, names) -> int:
    if isinstance(ref, str):
        return names.index(ref)
    return int(ref)


def _row_flags(spec: DataSpec, lay: Layout, time, ant1, ant2, rng) -> np.ndarray:
    fl = spec.flags
    names = list(lay.names)
    flag = np.zeros(len(time), bool)
    for a in fl.antennas:
        i = _antenna_index(a, names)
        flag |= (ant1 == i) | (ant2 == i)
    for a, b in fl.baselines:
        i, j = _antenna_index(a, names), _antenna_index(b, names)
        flag |= ((ant1 == i) & (ant2 == j)) | ((ant1 == j) & (ant2 == i))
    if fl.time_ranges:
        # the observation: from the start of the first integration, all scans back to back
        sched = schedule(spec)
        begin = time.min() - spec.integration_s / 2
        span = len(sched) * sched[0][2] * spec.integration_s
        for t0, t1 in fl.time_ranges:
            flag |= (time >= begin + t0 * span) & (time <= begin + t1 * span)
    if fl.rows_fraction > 0:
        pick = rng.choice(len(time), size=round(fl.rows_fraction * len(time)), replace=False)
        flag[pick] = True
    return flag


def _apply_flags(spec: DataSpec, path: str, spw_ids: list[int], ms_index: int) -> None:
    """Write FLAG and FLAG_ROW from the spec (replacing whatever was there) and read them back."""
    ct = casaenv.tools()
    lay = layout(spec.config, spec.max_antennas)
    tb = ct.table()
    tb.open(os.path.join(path, "DATA_DESCRIPTION"))
    dd_spw = tb.getcol("SPECTRAL_WINDOW_ID")
    tb.close()
    rng = np.random.default_rng([spec.seed, 3, ms_index])
    tb.open(path, nomodify=False)
    try:
        time, ant1, ant2 = tb.getcol("TIME"), tb.getcol("ANTENNA1"), tb.getcol("ANTENNA2")
        ddid = tb.getcol("DATA_DESC_ID")
        row_flag = _row_flags(spec, lay, time, ant1, ant2, rng)
        tb.putcol("FLAG_ROW", row_flag)
        expected = {}
        for dd in np.unique(ddid):
            rows = np.flatnonzero(ddid == dd)
            sub = tb.selectrows(rows.tolist())
            ncorr, nchan, _ = sub.getcol("FLAG").shape
            chan_flag = np.zeros(nchan, bool)
            chan_flag[spec.flags.channels.get(spw_ids[dd_spw[dd]], [])] = True
            flag = np.broadcast_to(chan_flag[None, :, None] | row_flag[rows][None, None, :],
                                   (ncorr, nchan, len(rows))).copy()
            sub.putcol("FLAG", flag)
            sub.close()
            expected[int(dd)] = (rows, flag)
        tb.flush()
    finally:
        tb.close()
    # read back: casatools reference tables (selectrows) write through; make sure they did
    tb.open(path)
    try:
        if not (tb.getcol("FLAG_ROW") == row_flag).all():
            raise RuntimeError(f"{path}: FLAG_ROW does not hold the requested flags")
        for dd, (rows, flag) in expected.items():
            sub = tb.selectrows(rows.tolist())
            ok = (sub.getcol("FLAG") == flag).all()
            sub.close()
            if not ok:
                raise RuntimeError(f"{path}: FLAG of data description {dd} differs from the spec")
    finally:
        tb.close()


# ---------------------------------------------------------------------------------------------
# drawing a random dataset

@dataclass(frozen=True)
class Array:
    configs: tuple
    band_ghz: tuple  # (lo, hi) frequencies this array observes at
    latitude_deg: float
    feeds: str  # native polarization basis: "X" linear or "R" circular
    east_west: bool = False


ARRAYS = {
    "vla": Array(("vla.a.cfg", "vla.b.cfg", "vla.c.cfg", "vla.d.cfg"), (1.0, 40.0), 34.1, "R"),
    "alma": Array(("alma.cycle10.1.cfg", "alma.cycle10.3.cfg", "alma.cycle10.5.cfg"),
                  (84.0, 350.0), -23.0, "X"),
    "aca": Array(("aca.cycle10.cfg",), (84.0, 350.0), -23.0, "X"),
    "meerkat": Array(("meerkat.cfg",), (0.9, 1.7), -30.7, "X"),
    "atca-h": Array(("atca_h168.cfg", "atca_h214.cfg"), (1.1, 25.0), -30.3, "X"),  # NS spur
    "atca-ew": Array(("atca_6a.cfg", "atca_750a.cfg", "atca_ew352.cfg"), (1.1, 25.0), -30.3,
                     "X", True),
    "wsrt": Array(("WSRT.cfg",), (0.3, 8.0), 52.9, "X", True),
    "sma": Array(("sma.compact.cfg", "sma.extended.cfg"), (210.0, 350.0), 19.8, "R"),
    "carma": Array(("carma.d.cfg", "carma.c.cfg"), (85.0, 115.0), 37.3, "R"),
    "pdbi": Array(("pdbi-a.cfg", "pdbi-d.cfg"), (80.0, 116.0), 44.6, "X"),
    "ngvla": Array(("ngvla-sba-revC.cfg", "ngvla-core-revC.cfg"), (1.2, 50.0), 34.1, "X"),
}
EAST_WEST = frozenset(c for a in ARRAYS.values() if a.east_west for c in a.configs)
# how often each array is drawn
ARRAY_WEIGHTS = {"vla": 4, "alma": 3, "aca": 1, "meerkat": 2, "atca-h": 1, "atca-ew": 2,
                 "wsrt": 1, "sma": 1, "carma": 1, "pdbi": 1, "ngvla": 1}
MAX_ROWS = 20000
MAX_CUBE_CHANNELS = 120  # tclean's default cube grid over all spws stays this small


def _loguniform(rng, lo, hi):
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _draw_spws(rng, f_center: float, frames: list[str]) -> list[Spw]:
    """1-3 windows near f_center: widths differing by up to 4x, contiguous, with a gap or
    overlapping, in ascending or descending order, channels ascending or descending."""
    nspw = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
    width0 = f_center * 10 ** rng.uniform(-5.0, -2.3)
    layout_ = []  # (lo edge, nchan, |width|)
    lo = 0.0
    for k in range(nspw):
        nchan = int(rng.integers(4, 25))
        width = width0 * float(rng.choice([1.0, 1.0, 0.5, 1.5, 2.0])) if k else width0
        if k:
            prev_lo, prev_n, prev_w = layout_[-1]
            prev_hi = prev_lo + prev_n * prev_w
            kind = rng.choice(["contiguous", "gap", "overlap"])
            if kind == "contiguous":
                lo = prev_hi
            elif kind == "gap":
                lo = prev_hi + rng.uniform(0.1, 1.0) * prev_n * prev_w
            else:
                lo = prev_hi - rng.uniform(0.2, 0.8) * min(prev_n * prev_w, nchan * width)
        layout_.append((lo, nchan, width))
    total = layout_[-1][0] + layout_[-1][1] * layout_[-1][2]
    shift = f_center - total / 2
    spws = []
    for k, (lo, nchan, width) in enumerate(layout_):
        lo += shift
        if rng.random() < 0.35:  # descending channels: start at the top
            spws.append(Spw(nchan, lo + (nchan - 0.5) * width, -width, frames[k]))
        else:
            spws.append(Spw(nchan, lo + 0.5 * width, width, frames[k]))
    if nspw > 1 and rng.random() < 0.3:
        spws.reverse()  # windows in descending frequency order
    return spws


def _cube_channels(spws: list[Spw]) -> int:
    """Roughly the channels of tclean's default cube over all spws (narrowest width)."""
    lo, hi = min(s.edges()[0] for s in spws), max(s.edges()[1] for s in spws)
    return int(math.ceil((hi - lo) / min(abs(s.width_hz) for s in spws)))


def draw(rng: np.random.Generator) -> DataSpec:
    """A random small dataset: an array of ARRAYS at a frequency of its band; 1-3 spws (widths
    up to 4x apart; contiguous, with gaps or overlapping; in ascending or descending order;
    channels ascending or descending) labelled TOPO, LSRK or BARY (one frame mostly, mixed
    frames sometimes: tclean then logs a non-fatal SEVERE "Error combining SpWs"); dual or full
    polarization, mostly in the array's own basis; 1-3 fields; snapshots; dropped
    integrations; flagged antennas, baselines, time ranges, channels and random rows;
    polarized sources with spectral indices and sometimes a spectral line; noise such that
    the weakest source stays well above it in every channel. At most MAX_ROWS rows."""
    names = list(ARRAY_WEIGHTS)
    weights = np.array([ARRAY_WEIGHTS[n] for n in names], float)
    kind = names[rng.choice(len(names), p=weights / weights.sum())]
    arr = ARRAYS[kind]
    config = str(rng.choice(arr.configs))
    # arrays of up to 30 antennas whole (VLA's 27), larger ones subsampled to 24
    max_antennas = len(layout(config, 10 ** 6).names)
    max_antennas = max_antennas if max_antennas <= 30 else 24
    lay = layout(config, max_antennas)
    nant, nbl = len(lay.names), lay.nbaselines

    # spectral windows
    f_center = _loguniform(rng, arr.band_ghz[0] * 1.1e9, arr.band_ghz[1] * 0.9e9)
    one_frame = str(rng.choice(FRAMES))
    frames = ([one_frame] * 3 if rng.random() < 0.85
              else [str(f) for f in rng.choice(FRAMES, size=3)])
    while True:
        spws = _draw_spws(rng, f_center, frames)
        if _cube_channels(spws) <= MAX_CUBE_CHANNELS:
            break
    nspw = len(spws)

    feeds = arr.feeds if rng.random() < 0.8 else {"X": "R", "R": "X"}[arr.feeds]
    corr = {"X": ["XX YY", "XX XY YX YY"], "R": ["RR LL", "RR RL LR LL"]}[feeds][
        int(rng.random() < 0.5)]

    # fields and timing: at most MAX_ROWS rows in all
    nfields = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
    max_ints = max(nfields, MAX_ROWS // (nbl * nspw))
    # degenerate: one integration per field (on an east-west array a line in the uv plane,
    # where tclean's PSF fit may take ~0.5 s per plane before giving up)
    snapshot = rng.random() < (0.3 if arr.east_west else 0.06)
    if snapshot:
        integration_s = float(rng.choice([2.0, 10.0, 30.0, 60.0]))
        scans_per_field = 1
        hours = nfields * integration_s / 3600
        per_scan = 1
    else:
        # an east-west array needs hours of Earth rotation for 2-d uv coverage; a few minutes
        # give a nearly 1-d one on which tclean's PSF fit fails to converge, ~0.5 s per plane
        hours = _loguniform(rng, 0.5 if arr.east_west else 0.05, 2.0)
        nint = int(rng.integers(min(max_ints, max(2 * nfields, 6)), min(max_ints, 240) + 1))
        scans_per_field = 2 if nint >= 8 * nfields and rng.random() < 0.4 else 1
        per_scan = max(1, nint // (nfields * scans_per_field))
        integration_s = float(min(300, max(1, round(hours * 3600 / (per_scan * nfields
                                                                    * scans_per_field)))))
        hours = per_scan * nfields * scans_per_field * integration_s / 3600  # whole scans
    drop = float(rng.uniform(0.1, 0.4)) if per_scan >= 4 and rng.random() < 0.3 else 0.0

    # direction: transit well above the horizon, away from the pole
    dec = float(np.clip(rng.uniform(arr.latitude_deg - 50, arr.latitude_deg + 50), -80, 80))
    direction = ("J2000", f"{rng.uniform(0, 360):.6f}deg", f"{dec:.6f}deg")
    epoch = f"2024/{int(rng.integers(1, 13)):02d}/{int(rng.integers(1, 29)):02d}/00:00:00"

    # the sky: inside the primary beam and inside a 32-96 pixel image
    fmax = max(s.edges()[1] for s in spws)
    fmin = min(s.edges()[0] for s in spws)
    cell = C_M_S / fmax / lay.bmax_m / 5 * ARCSEC_PER_RAD
    pb = 1.13 * C_M_S / fmax / float(lay.diameters.max()) * ARCSEC_PER_RAD
    reach = min(0.3 * float(rng.choice([32, 48, 64, 96])) * cell, 0.25 * pb)
    fields = [("F0", 0.0, 0.0)] + [
        (f"F{k}", *[float(v) for v in rng.uniform(-0.6, 0.6, 2) * reach])
        for k in range(1, nfields)]
    ref = (fmin + fmax) / 2
    sources = []
    for k in range(int(rng.integers(1, 4))):
        pos = (0.0, 0.0) if k == 0 and rng.random() < 0.5 else rng.uniform(-reach, reach, 2)
        pol = (tuple(float(v) for v in rng.uniform(-0.1, 0.1, 3) * [1, 1, 0.5])
               if rng.random() < 0.6 else (0.0, 0.0, 0.0))
        sources.append(Source(float(pos[0]), float(pos[1]), float(rng.uniform(0.3, 2.0)),
                              float(rng.uniform(-1.5, 1.0)), pol))
    line = None
    if rng.random() < 0.5:
        s = spws[int(rng.integers(nspw))]
        center = float(rng.choice(s.chan_freqs()) + rng.uniform(-0.5, 0.5) * s.width_hz)
        pos = rng.uniform(-reach, reach, 2)
        line = Line(float(pos[0]), float(pos[1]), float(rng.uniform(0.5, 3.0)), center,
                    float(rng.uniform(1.5, 5.0) * abs(s.width_hz)),
                    float(rng.choice([0.0, rng.uniform(0.05, 0.3)])))

    # noise: the weakest continuum source stays >= 20 sigma in one channel of one stokes
    # plane, counting a quarter of the visibilities of one field (flags, drops, spws)
    weakest = min(s.flux_jy * min((fmin / ref) ** s.spectral_index,
                                  (fmax / ref) ** s.spectral_index) for s in sources)
    nvis = max(1.0, 0.25 * nbl * per_scan * scans_per_field * 2)
    noise = 0.0 if rng.random() < 0.1 else float(
        np.clip(weakest * math.sqrt(nvis) / rng.uniform(20, 80), 1e-4, 5.0))

    # flags
    flags = Flags()
    if nant >= 5 and rng.random() < 0.25:
        i = int(rng.integers(nant))
        flags.antennas = [lay.names[i] if rng.random() < 0.5 else i]
    if rng.random() < 0.25:
        for _ in range(int(rng.integers(1, 3))):
            a, b = (int(v) for v in rng.choice(nant, 2, replace=False))
            flags.baselines.append((lay.names[a], lay.names[b]) if rng.random() < 0.5 else (a, b))
    if not snapshot and rng.random() < 0.25:
        t0 = float(rng.uniform(0, 0.8))
        flags.time_ranges = [(t0, t0 + float(rng.uniform(0.05, 0.2)))]
    if rng.random() < 0.3:
        k = int(rng.integers(nspw))
        n = spws[k].nchan
        chans = {int(rng.integers(n))}
        if rng.random() < 0.5:
            chans.add(int(rng.choice([0, n - 1])))
        flags.channels = {k: sorted(chans)}
    if rng.random() < 0.2:
        flags.rows_fraction = float(rng.uniform(0.01, 0.05))

    return DataSpec(config=config, max_antennas=max_antennas, spws=spws, corr=corr, fields=fields,
                    direction=direction, epoch=epoch, hours=hours, integration_s=integration_s,
                    scans_per_field=scans_per_field, drop_rows_fraction=drop, sources=sources,
                    line=line, ref_freq_hz=ref, noise_jy=noise, flags=flags,
                    split_spws=bool(nspw > 1 and rng.random() < 0.3),
                    seed=int(rng.integers(2 ** 31)))
