"""Writing a :class:`~pclean.sim.spec.DataSpec` as MeasurementSets with casatools.simulator.

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

import json
import os
import shutil
import uuid

import numpy as np

from pclean import casa
from pclean.sim.simulate import add_point_source, predict
from pclean.sim.spec import (FRAME_CODES, DataSpec, Layout, _ms_names, _offset_direction,
                              fingerprint, layout, schedule, to_dict, validate)



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
    ct = casa.tools()
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
        predict(sm, cl, clname, spec.noise_jy, int(spec.seed) * 1000 + ms_index)
    finally:
        sm.close()
        cl.done()
        shutil.rmtree(clname, ignore_errors=True)


def _fix_subtables(spec: DataSpec, path: str, spw_ids: list[int]) -> None:
    tb = casa.tools().table()
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
    tb = casa.tools().table()
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
    tb = casa.tools().table()
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
    tb = casa.tools().table()
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
    ct = casa.tools()
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
