"""pclean.simdata: the MeasurementSets it writes hold what their DataSpec asks for."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from pclean import casa
from pclean.sim import data as simdata
from pclean.sim.data import DataSpec, Flags, Line, Source, Spw

# casacore Stokes codes of POLARIZATION.CORR_TYPE
CORR_CODES = {"RR": 5, "RL": 6, "LR": 7, "LL": 8, "XX": 9, "XY": 10, "YX": 11, "YY": 12}


def table(path):
    tb = casa.tools().table()
    tb.open(path)
    return tb


def columns(path, *names, query=None):
    tb = table(path)
    try:
        sub = tb.query(query) if query else tb
        out = [sub.getcol(n) for n in names]
        if query:
            sub.close()
    finally:
        tb.close()
    return out if len(out) > 1 else out[0]


def spw_rows(path):
    tb = table(os.path.join(path, "SPECTRAL_WINDOW"))
    try:
        return [{c: tb.getcell(c, r) for c in ("CHAN_FREQ", "CHAN_WIDTH", "MEAS_FREQ_REF",
                                                "NUM_CHAN", "EFFECTIVE_BW", "TOTAL_BANDWIDTH")}
                for r in range(tb.nrows())]
    finally:
        tb.close()


# three windows: ascending LSRK, descending TOPO overlapping it, and a BARY one below both
# (so the list is not in frequency order), on 6 ATCA antennas to stay small
SPWS = [Spw(6, 5.000e9, 2.0e6, "LSRK"), Spw(5, 5.014e9, -3.0e6, "TOPO"),
        Spw(4, 4.980e9, 1.0e6, "BARY")]


@pytest.fixture(scope="module")
def multi_spw(tmp_path_factory):
    spec = DataSpec(config="atca_6a.cfg", spws=SPWS, corr="XX XY YX YY",
                    direction=("J2000", "150deg", "-45deg"), hours=0.2, integration_s=60,
                    sources=[Source(0.0, 0.0, 1.0, 0.0, (0.1, 0.05, 0.02))], noise_jy=0.05,
                    seed=11)
    return spec, simdata.build(spec, str(tmp_path_factory.mktemp("multi")))


def assert_spw_equal(row, spw):
    assert row["NUM_CHAN"] == spw.nchan
    np.testing.assert_allclose(row["CHAN_FREQ"], spw.chan_freqs(), rtol=0, atol=1e-3)
    np.testing.assert_allclose(row["CHAN_WIDTH"], spw.width_hz)
    assert row["MEAS_FREQ_REF"] == simdata.FRAME_CODES[spw.frame]
    assert (row["EFFECTIVE_BW"] > 0).all() and row["TOTAL_BANDWIDTH"] > 0


def test_spectral_windows_polarization_fields(multi_spw):
    spec, paths = multi_spw
    assert len(paths) == 1 and paths[0].endswith(".ms")
    rows = spw_rows(paths[0])
    assert len(rows) == 3
    for row, spw in zip(rows, SPWS):
        assert_spw_equal(row, spw)
    # ascending / descending as asked
    assert np.all(np.diff(rows[0]["CHAN_FREQ"]) > 0) and np.all(np.diff(rows[1]["CHAN_FREQ"]) < 0)
    corr = columns(os.path.join(paths[0], "POLARIZATION"), "CORR_TYPE")
    assert corr[:, 0].tolist() == [CORR_CODES[c] for c in spec.corr.split()]
    dd_spw = columns(os.path.join(paths[0], "DATA_DESCRIPTION"), "SPECTRAL_WINDOW_ID")
    assert sorted(dd_spw.tolist()) == [0, 1, 2]
    ddid, time, scan = columns(paths[0], "DATA_DESC_ID", "TIME", "SCAN_NUMBER")
    assert len(ddid) == simdata.nrows(spec) == 15 * 3 * 12
    # the spws are observed simultaneously, in one scan
    for d in range(3):
        assert np.array_equal(np.unique(time[ddid == d]), np.unique(time))
    assert set(scan) == {1}
    # nothing flagged that the spec did not ask for
    assert not columns(paths[0], "FLAG_ROW").any()
    for d in range(3):
        assert not columns(paths[0], "FLAG", query=f"DATA_DESC_ID=={d}").any()


def test_noise_in_every_correlation(multi_spw):
    """The source sits at the phase centre, so each correlation is a constant plus noise; the
    simulator's simplenoise leaves XY/YX noiseless, build() adds it there too."""
    spec, paths = multi_spw
    data = columns(paths[0], "DATA", query="DATA_DESC_ID==0")
    i, (q, u, v) = 1.0, spec.sources[0].pol
    expected = [i + q, u + 1j * v, u - 1j * v, i - q]  # XX XY YX YY of a linear feed
    for c in range(4):
        assert abs(data[c].mean() - expected[c]) < 0.02
        assert data[c].real.std() == pytest.approx(spec.noise_jy, rel=0.15)
        assert data[c].imag.std() == pytest.approx(spec.noise_jy, rel=0.15)


def test_split_spws_writes_one_ms_per_spw(tmp_path):
    spec = DataSpec(config="atca_6a.cfg", spws=SPWS, corr="RR LL", hours=0.05,
                    integration_s=60, direction=("J2000", "150deg", "-45deg"),
                    drop_rows_fraction=0.0, split_spws=True, seed=2)
    paths = simdata.build(spec, str(tmp_path))
    assert len(paths) == 3 and len(set(paths)) == 3
    times = []
    for path, spw in zip(paths, SPWS):
        rows = spw_rows(path)
        assert len(rows) == 1
        assert_spw_equal(rows[0], spw)
        times.append(np.unique(columns(path, "TIME")))
    assert all(np.array_equal(t, times[0]) for t in times)


def test_line_makes_channels_differ(tmp_path):
    spw = Spw(16, 1.40e9, 1.0e6, "LSRK")
    line_freq = float(spw.chan_freqs()[5])
    spec = DataSpec(config="vla.d.cfg", spws=[spw], hours=0.05, integration_s=60,
                    sources=[Source(0.0, 0.0, 1.0, 0.0)], noise_jy=0.0,
                    line=Line(0.0, 0.0, 2.0, line_freq, 2.0e6, 0.0), seed=1)
    data = columns(simdata.build(spec, str(tmp_path))[0], "DATA")
    amp = np.abs(data[0].mean(axis=-1))  # both sources at the phase centre: I = sum of fluxes
    assert amp[5] == pytest.approx(3.0, rel=0.01)
    np.testing.assert_allclose(amp, 1.0 + spec.line.flux(spw.chan_freqs()), atol=0.02)
    assert amp[4] > amp[3] > amp[2] and amp[6] < amp[5]  # channels differ around the line


def test_flags_are_exactly_the_requested_ones(tmp_path):
    spec = DataSpec(config="atca_h168.cfg", spws=[Spw(8, 8.0e9, 4.0e6), Spw(6, 8.1e9, -4.0e6)],
                    corr="XX YY", hours=0.5, integration_s=60,
                    direction=("J2000", "30deg", "-60deg"), noise_jy=0.05, seed=5,
                    flags=Flags(antennas=["W104"], baselines=[(0, 1)], time_ranges=[(0.5, 0.6)],
                                channels={0: [0, 3], 1: [5]}, rows_fraction=0.03))
    path = simdata.build(spec, str(tmp_path))[0]
    names = list(columns(os.path.join(path, "ANTENNA"), "NAME"))
    bad = names.index("W104")
    time, a1, a2, ddid, flag_row = columns(path, "TIME", "ANTENNA1", "ANTENNA2",
                                           "DATA_DESC_ID", "FLAG_ROW")
    span = 0.5 * 3600
    t0 = time.min() - 30
    asked = ((a1 == bad) | (a2 == bad) | ((a1 == 0) & (a2 == 1))
             | ((time >= t0 + 0.5 * span) & (time <= t0 + 0.6 * span)))
    assert asked.any() and (~asked).any()
    assert flag_row[asked].all()
    random_rows = flag_row & ~asked
    n = len(time)
    assert 0 < random_rows.sum() <= round(0.03 * n)
    for d, chans in ((0, [0, 3]), (1, [5])):
        sel = ddid == d
        flag = columns(path, "FLAG", query=f"DATA_DESC_ID=={d}")
        rows_flagged = flag_row[sel]
        assert flag[:, :, rows_flagged].all()  # a flagged row: every correlation and channel
        good = flag[:, :, ~rows_flagged]
        assert good[:, chans, :].all()  # a flagged channel: in every row
        others = np.delete(good, chans, axis=1)
        assert others.size and not others.any()  # the rest is unflagged


def test_dropped_integrations_make_time_uneven(tmp_path):
    spec = DataSpec(config="atca_6a.cfg", spws=SPWS[:2], corr="XX YY", hours=20 / 60,
                    integration_s=60, direction=("J2000", "150deg", "-45deg"),
                    drop_rows_fraction=0.3, split_spws=True, seed=9)
    paths = simdata.build(spec, str(tmp_path))
    per_ms = []
    for path in paths:
        time, ddid = columns(path, "TIME", "DATA_DESC_ID")
        t = np.unique(time)
        assert len(t) == 20 - 6
        steps = np.round(np.diff(t), 3)
        assert set(steps) >= {60.0, 120.0}  # some neighbours, some gaps
        assert (np.bincount(np.searchsorted(t, time)) == 15).all()  # whole integrations gone
        per_ms.append(t)
    assert np.array_equal(per_ms[0], per_ms[1])  # the same integrations in every MS


def test_build_is_deterministic(tmp_path):
    spec = DataSpec(config="sma.compact.cfg", spws=[Spw(4, 230e9, 10e6)], hours=0.05,
                    integration_s=30, direction=("J2000", "60deg", "20deg"), seed=3,
                    flags=Flags(rows_fraction=0.05))
    a = simdata.build(spec, str(tmp_path / "a"))[0]
    b = simdata.build(spec, str(tmp_path / "b"))[0]
    for col in ("DATA", "FLAG", "UVW", "TIME"):
        assert np.array_equal(columns(a, col), columns(b, col)), col


def test_build_does_not_depend_on_what_ran_before(tmp_path):
    """build() writes the same DATA whatever the process did before. cl.addcomponent's spectral
    index alone leaves a one-element Stokes index vector that sm.predict reads past the end of
    (see the module doc of pclean.simdata): the predicted Q/U then depended on leftover heap
    bytes, zero in a fresh process, garbage after other CASA work (the whole suite before this
    file: the noise of test_noise_in_every_correlation came out ~20% high). Here a build in
    this process after pclean.simulate.simulate (and after whatever tests ran before) must
    write bit-identical DATA to one in a fresh process whose malloc fills every new block with
    garbage (MALLOC_PERTURB_), which made every row of the old build wrong; and without noise
    every row and channel holds exactly the model."""
    from pclean.sim.simulate import SimSpec, simulate

    spec = DataSpec(config="atca_6a.cfg", spws=[Spw(6, 5.0e9, 4.0e6), Spw(3, 5.05e9, -8.0e6)],
                    corr="XX XY YX YY", direction=("J2000", "150deg", "-45deg"), hours=0.1,
                    integration_s=60, sources=[Source(0.0, 0.0, 1.0, -0.7, (0.1, 0.05, 0.02))],
                    noise_jy=0.05, seed=21)
    simulate(str(tmp_path / "other.ms"), SimSpec(nchan=4, hours=0.1, integration_s=60))
    here = simdata.build(spec, str(tmp_path / "here"))[0]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(simdata.__file__))))
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); "
            "from pclean.sim import data as simdata; "
            "simdata.build(simdata.from_dict(json.loads(sys.argv[2])), sys.argv[3])")
    subprocess.run([sys.executable, "-c", code, root, json.dumps(simdata.to_dict(spec)),
                    str(tmp_path / "fresh")], check=True, cwd=tmp_path, capture_output=True,
                   env={**os.environ, "MALLOC_PERTURB_": "165"})
    fresh = os.path.join(tmp_path, "fresh", "data.ms")
    for dd in range(len(spec.spws)):
        query = f"DATA_DESC_ID=={dd}"
        for col in ("DATA", "FLAG", "TIME", "ANTENNA1", "ANTENNA2"):
            assert np.array_equal(columns(here, col, query=query),
                                  columns(fresh, col, query=query)), (col, dd)
        # UVW only to ~1e-15 relative: the simulator's UVW (casacore measures, called from
        # sm.observe) differs in the last bits after an earlier simulation at times within
        # ~an hour of these, a state no measures-tool call reaches; DATA of a source at the
        # phase centre does not depend on it, and 1e-12 m never changes a float32 visibility
        np.testing.assert_allclose(columns(here, "UVW", query=query),
                                   columns(fresh, "UVW", query=query), rtol=0, atol=1e-9)

    quiet = DataSpec(**{**spec.__dict__, "noise_jy": 0.0})
    path = simdata.build(quiet, str(tmp_path / "quiet"))[0]
    s = quiet.sources[0]
    q, u, v = s.pol
    for dd, spw in enumerate(quiet.spws):
        data = columns(path, "DATA", query=f"DATA_DESC_ID=={dd}")
        scale = (spw.chan_freqs() / quiet.reference_freq()) ** s.spectral_index
        expected = np.array([1 + q, u + 1j * v, u - 1j * v, 1 - q])[:, None] * scale[None, :]
        np.testing.assert_allclose(data, np.broadcast_to(expected[:, :, None], data.shape),
                                   rtol=0, atol=1e-6)


def test_cache_reuses_a_build_and_fingerprint_tracks_the_spec(tmp_path, monkeypatch):
    spec = DataSpec(config="sma.compact.cfg", spws=[Spw(4, 230e9, 10e6)], hours=0.05,
                    integration_s=30, direction=("J2000", "60deg", "20deg"), seed=3)
    first = simdata.build_cached(spec, str(tmp_path))
    assert len(first) == 1 and os.path.isdir(first[0])
    stamp = os.stat(os.path.join(first[0], "table.dat")).st_mtime_ns

    def no_build(*args, **kwargs):
        raise AssertionError("rebuilt a cached spec")

    monkeypatch.setattr(simdata, "build", no_build)
    again = DataSpec(**{**spec.__dict__})  # an equal spec, another object
    assert simdata.build_cached(again, str(tmp_path)) == first
    assert os.stat(os.path.join(first[0], "table.dat")).st_mtime_ns == stamp
    with open(os.path.join(os.path.dirname(first[0]), "spec.json")) as f:
        assert simdata.from_dict(json.load(f)) == spec
    monkeypatch.undo()

    fp = simdata.fingerprint(spec)
    assert fp == simdata.fingerprint(again)
    changed = [
        DataSpec(**{**spec.__dict__, "seed": 4}),
        DataSpec(**{**spec.__dict__, "spws": [Spw(4, 230e9, -10e6)]}),
        DataSpec(**{**spec.__dict__, "flags": Flags(channels={0: [1]})}),
        DataSpec(**{**spec.__dict__, "corr": "RR LL"}),
    ]
    assert len({fp} | {simdata.fingerprint(s) for s in changed}) == 1 + len(changed)


def test_interrupted_cached_build_leaves_nothing(tmp_path, monkeypatch):
    spec = DataSpec(config="sma.compact.cfg", spws=[Spw(4, 230e9, 10e6)], hours=0.02,
                    integration_s=30, direction=("J2000", "60deg", "20deg"), seed=8)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    from pclean.sim import build

    monkeypatch.setattr(build, "_apply_flags", interrupted)
    with pytest.raises(KeyboardInterrupt):
        simdata.build_cached(spec, str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_validate_rejects_what_build_cannot_honour():
    with pytest.raises(ValueError, match="corr"):
        simdata.validate(DataSpec(corr="XX"))
    with pytest.raises(ValueError, match="channels"):
        simdata.validate(DataSpec(flags=Flags(channels={0: [8]})))
    with pytest.raises(ValueError, match="antenna"):
        simdata.validate(DataSpec(flags=Flags(antennas=["nope"])))


DRAWN = [simdata.draw(np.random.default_rng(seed)) for seed in range(300)]


def test_draw_is_deterministic_and_json_round_trips():
    for seed in (0, 1, 17):
        a = simdata.draw(np.random.default_rng(seed))
        assert a == simdata.draw(np.random.default_rng(seed))
        assert simdata.from_dict(json.loads(json.dumps(simdata.to_dict(a)))) == a
    assert simdata.draw(np.random.default_rng(0)) != simdata.draw(np.random.default_rng(1))


def test_draw_covers_the_space_and_stays_small():
    specs = DRAWN
    assert len({s.config for s in specs}) >= 12
    assert {s.corr for s in specs} == set(simdata.CORRS)
    assert {len(s.spws) for s in specs} == {1, 2, 3}
    assert {sp.frame for s in specs for sp in s.spws} == set(simdata.FRAMES)
    assert any(s.split_spws for s in specs) and not all(s.split_spws for s in specs)
    assert {len(s.fields) for s in specs} == {1, 2, 3}
    widths = [sp.width_hz for s in specs for sp in s.spws]
    assert min(widths) < 0 < max(widths)
    multi = [s for s in specs if len(s.spws) > 1]
    assert any(s.spws[0].freq_start_hz > s.spws[-1].freq_start_hz for s in multi)
    assert any(len({abs(sp.width_hz) for sp in s.spws}) > 1 for s in multi)
    assert any(s.drop_rows_fraction > 0 for s in specs)
    assert any(s.line is not None for s in specs)
    snapshots = [s for s in specs if is_snapshot(s)]
    assert any(s.config in simdata.EAST_WEST and len(s.fields) == 1 for s in snapshots)
    fl = [s.flags for s in specs]
    assert any(f.antennas for f in fl) and any(f.baselines for f in fl)
    assert any(f.time_ranges for f in fl) and any(f.rows_fraction for f in fl)
    edge = [s for s in specs for k, ch in s.flags.channels.items()
            if 0 in ch or s.spws[k].nchan - 1 in ch]
    assert edge
    assert any(float(s.direction[2].rstrip("deg")) < -30 for s in specs)
    bands = {"vla": (1e9, 40e9), "alma": (84e9, 350e9), "meerkat": (0.9e9, 1.7e9)}
    for s in specs:
        simdata.validate(s)
        assert all(4 <= sp.nchan <= 24 for sp in s.spws)
        nant = len(simdata.layout(s.config, s.max_antennas).names)
        assert nant <= 24 or (nant <= 30 and nant == len(simdata.layout(s.config, 99).names))
        assert simdata.nrows(s) <= simdata.MAX_ROWS
        assert 0 < s.hours <= 2.0
        for key, (lo, hi) in bands.items():
            if s.config.startswith(key):
                flo, fhi = s.freq_range()
                assert lo * 0.95 <= flo and fhi <= hi * 1.05, (s.config, flo, fhi)
        # every source and field centre inside the image
        geom = simdata.imaging_geometry(s)
        half = 0.5 * geom["imsize"] * float(geom["cell"].rstrip("arcsec"))
        assert 32 <= geom["imsize"] <= 96
        offsets = [(x.ra_offset_arcsec, x.dec_offset_arcsec) for x in s.sources]
        offsets += [(f[1], f[2]) for f in s.fields]
        assert max(max(abs(a), abs(b)) for a, b in offsets) < 0.8 * half


def is_snapshot(s):
    return simdata.nrows(s) == (simdata.layout(s.config, s.max_antennas).nbaselines
                                * len(s.spws) * len(s.fields))


def pick_for_imaging():
    """Four small drawn datasets of different kinds: split spws; four correlations in several
    spws with flags or dropped integrations; circular dual polarization with descending
    channels; a single-integration snapshot of an east-west array."""
    def small(s):
        return simdata.nrows(s) <= 8000 and simdata._cube_channels(s.spws) <= 40

    def flagged(s):
        f = s.flags
        return bool(f.antennas or f.baselines or f.time_ranges or f.channels or f.rows_fraction
                    or s.drop_rows_fraction)

    kinds = [
        lambda s: s.split_spws,
        lambda s: len(s.corr.split()) == 4 and len(s.spws) > 1 and not is_snapshot(s)
        and flagged(s),
        lambda s: s.corr == "RR LL" and any(sp.width_hz < 0 for sp in s.spws),
        lambda s: is_snapshot(s) and s.config in simdata.EAST_WEST,
    ]
    chosen = []
    for kind in kinds:
        chosen.append(next(s for s in DRAWN if small(s) and kind(s) and s not in chosen))
    return chosen


@pytest.mark.parametrize("index", range(4))
def test_tclean_images_drawn_datasets(index, tmp_path):
    from casatasks import tclean

    spec = pick_for_imaging()[index]
    paths = simdata.build(spec, str(tmp_path / "ms"))
    assert len(paths) == (len(spec.spws) if spec.split_spws else 1)
    stokes = simdata.stokes_options(spec.corr)[-1]  # IQUV, IV or IQ
    prefix = str(tmp_path / "img")
    tclean(vis=paths if len(paths) > 1 else paths[0], imagename=prefix, specmode="cube",
           niter=0, weighting="natural", stokes=stokes, **simdata.imaging_geometry(spec))
    ia = casa.tools().image()
    ia.open(prefix + ".psf")
    try:
        psf = ia.getchunk()
    finally:
        ia.close()
    assert psf.shape[2] == len(stokes)
    assert np.isfinite(psf).all()
    assert psf.max() == pytest.approx(1.0, abs=1e-3)


def test_drawn_specs_are_varied_enough_for_imaging_picks():
    chosen = pick_for_imaging()
    assert len({s.config for s in chosen}) >= 2
    assert Counter(len(s.corr.split()) for s in chosen)[4] >= 1
