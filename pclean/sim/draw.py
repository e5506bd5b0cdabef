"""Random datasets for the fuzzer: a :class:`~pclean.sim.spec.DataSpec` drawn from a seed."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pclean.sim.spec import (ARCSEC_PER_RAD, C_M_S, FRAMES, DataSpec, Flags, Line, Source, Spw,
                              layout)


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
