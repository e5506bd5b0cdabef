"""Every class of difference the equality issue found, as a named test on its smallest form.

Each case images one dataset with serial tclean (as a user calls it) and with pclean under
several chunk plans (1-channel chunks among them), and requires the oracle's equality: pixels
of every product to 1e-5 of its peak, beams, masks, coordinates, the same products, iterdone,
nmajordone, stopcode and the minor-cycle summary.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import IMAGING
from oracle import assert_plans_equal, read, run_serial
from pclean import pclean
from pclean.sim import data as simdata
from pclean.params import ParameterError
from pclean.sim.data import DataSpec, Flags, Spw
from pclean.sim.simulate import SimSpec, simulate


@pytest.fixture(scope="module")
def topo24(data_dir):
    """VLA L band, 24 channels of 12.5 MHz from 1.0 GHz, labelled TOPO."""
    return simulate(str(data_dir / "topo24.ms"), SimSpec(nchan=24, frame="TOPO"))


@pytest.fixture(scope="module")
def topo32(data_dir):
    return simulate(str(data_dir / "topo32.ms"), SimSpec(nchan=32, frame="TOPO",
                                                         chan_width_hz=4e6))


def _build(data_dir, name, spec):
    """The MS of ``spec`` and the imaging geometry (imsize, cell) that suits it."""
    return simdata.build(spec, str(data_dir / name))[0], dict(
        IMAGING, **simdata.imaging_geometry(spec))


@pytest.fixture(scope="module")
def three_spws(data_dir):
    """One MS, three spws as correlators write them: different widths, a gap, the second
    descending, listed out of frequency order."""
    spec = DataSpec(config="vla.c.cfg", corr="RR LL", hours=0.3, integration_s=60,
                    direction=("J2000", "150deg", "30deg"), seed=3,
                    spws=[Spw(8, 1.420e9, 2e6, "TOPO"), Spw(6, 1.400e9 + 5 * 4e6, -4e6, "TOPO"),
                          Spw(6, 1.440e9, 2e6, "TOPO")])
    return _build(data_dir, "three_spws", spec)


@pytest.fixture(scope="module")
def circular(data_dir):
    """RR LL data with a circularly polarized source, for stokes='IV'."""
    spec = DataSpec(config="vla.d.cfg", corr="RR LL", hours=0.5, integration_s=60,
                    spws=[Spw(10, 1.4e9, 4e6, "TOPO")],
                    sources=[simdata.Source(0, 0, 1.0, -0.7, (0, 0, 0.1)),
                             simdata.Source(-50, 40, 0.5, 0.3)], seed=5)
    return _build(data_dir, "circular", spec)


@pytest.fixture(scope="module")
def unfittable(data_dir):
    """Channels whose psf CASA cannot fit: flagged ones at both band edges and in the middle
    (blank psfs), and a one-integration east-west snapshot (fits that throw)."""
    flagged = DataSpec(config="vla.d.cfg", corr="RR LL", hours=0.5, integration_s=60,
                       spws=[Spw(12, 1.4e9, 4e6, "LSRK")], seed=6,
                       flags=Flags(channels={0: [0, 5, 11]}))
    snapshot = DataSpec(config="atca_6a.cfg", corr="XX YY", hours=10 / 3600,
                        integration_s=10, spws=[Spw(12, 5.5e9, 8e6, "TOPO")],
                        direction=("J2000", "150deg", "-45deg"), seed=7)
    return _build(data_dir, "flagged", flagged), _build(data_dir, "snapshot", snapshot)


def test_1_a_start_casa_moves_inward(topo24, serial, client, tmp_path):
    """A start below the band in TOPO: CASA moves it (by an nchan-dependent amount); chunks
    re-derived as start + k*width crashed ('chunk channel grid differs')."""
    params = dict(IMAGING, weighting="natural", niter=0, outframe="TOPO", start="0.98GHz",
                  width="12.5MHz", nchan=8)
    assert_plans_equal(serial, client, tmp_path, topo24, params, [4, [1, 3, 4]])


def test_2_optical_velocity_grid_is_refused_up_front(topo24, client, tmp_path):
    """veltype='optical': CASA's frequency increment depends on nchan (a tabular axis), and it
    grids a sub-cube of such an axis differently from the whole cube even where the channel
    frequencies are the same (psf 1.8e-3 of peak off). Chunks crashed on the grid check; now
    the call is refused before any worker starts, suggesting serial tclean."""
    params = dict(IMAGING, weighting="natural", niter=50, restfreq="1.12GHz", veltype="optical",
                  start="-10000km/s", width="3500km/s", nchan=6, outframe="LSRK")
    with pytest.raises(ParameterError, match="veltype='optical'.*serial tclean"):
        pclean(vis=topo24, imagename=str(tmp_path / "pc"), cluster=client, chanchunk=2,
               **params)
    assert not os.path.exists(str(tmp_path / "pc.pclean-work"))


def test_3_spw_channel_range_default_grid(topo32, serial, client, tmp_path):
    """spw='0:4~27' with the default (channel-index) grid: chunk 0 was placed on channel 0."""
    params = dict(IMAGING, weighting="briggs", niter=100, spw="0:4~27")
    assert_plans_equal(serial, client, tmp_path, topo32, params, [None, [3, 1, 20]])


def test_4_several_spws_in_one_ms(three_spws, serial, client, tmp_path):
    """Several spws of different widths with a gap, one descending, default grid."""
    ms, geometry = three_spws
    params = dict(geometry, weighting="briggs", niter=100)
    ref_prefix, _ = serial(ms, **params)
    nchan = int(read(ref_prefix + ".psf")[0].shape[3])
    assert_plans_equal(serial, client, tmp_path, ms, params, [None, 5, [1, 7, 2, nchan - 10]])


def test_5_multi_stokes_with_deconvolution(circular, serial, client, tmp_path):
    """stokes='IV' with niter > 0 and several chunks: the merged minor-cycle summary numbers a
    plane channel + Stokes x channels (IndexError after all the imaging)."""
    ms, geometry = circular
    params = dict(geometry, stokes="IV", weighting="natural", niter=200, cycleniter=20)
    for fullsummary in (False, True):
        assert_plans_equal(serial, client, tmp_path / str(fullsummary), ms,
              dict(params, fullsummary=fullsummary), [None, [1, 4, 5]])


def test_6_unfittable_psf_channels_get_the_cube_wide_beam(unfittable, serial, client,
                                                          tmp_path):
    """Serial gives a channel whose psf cannot be fitted the largest valid beam of the whole
    cube; a chunk left alone gave it the largest of its own (beams up to 99% off)."""
    (flagged, geometry), (snapshot, snap_geometry) = unfittable
    ref = assert_plans_equal(serial, client, tmp_path / "flagged", flagged,
                dict(geometry, weighting="natural", niter=50), [[2, 3, 1, 6], 1])
    beams = read(ref + ".psf")[1]["beams"]
    major = [beams[f"*{c}"]["*0"]["major"]["value"] for c in (0, 5, 11)]
    assert len(set(major)) == 1  # the three flagged channels share the cube's fill beam
    ref = assert_plans_equal(serial, client, tmp_path / "snapshot", snapshot,
                dict(snap_geometry, weighting="briggs", niter=20), [[3, 3, 6], 4])
    beams = read(ref + ".psf")[1]["beams"]
    areas = [beams[f"*{c}"]["*0"]["major"]["value"] * beams[f"*{c}"]["*0"]["minor"]["value"]
             for c in range(len(beams))]
    assert areas.count(max(areas)) >= 2  # fits threw: their channels took the largest beam


def test_7_top_channels_get_no_data_serial_does_not_give(topo24, serial, client, tmp_path):
    """start=3, width=2, 10 channels in TOPO, chunks 4,4,2: the top channels got more data
    than in serial (sumwt +3.3%)."""
    params = dict(IMAGING, weighting="natural", niter=0, outframe="TOPO", start=3, width=2,
                  nchan=10)
    assert_plans_equal(serial, client, tmp_path, topo24, params, [[4, 4, 2], [4, 4, 1, 1]])


def test_8_cubic_interpolation_with_deconvolution(topo24, serial, client, tmp_path):
    """Predicting a channel's model with cubic interpolation needs two neighbours each side:
    the residual was 16% of peak off before a chunk boundary with one."""
    params = dict(IMAGING, weighting="briggs", niter=300, interpolation="cubic",
                  outframe="LSRK")
    assert_plans_equal(serial, client, tmp_path, topo24, params, [[5, 1, 6, 12], 3])


def test_9_binding_nsigma(ms_lsrk, serial, client, tmp_path):
    """nsigma stops serial (stopcode 8): its threshold is nsigma x the largest robust rms over
    the whole cube; merged chunk by chunk, the iterbot kept the last chunk's."""
    params = dict(IMAGING, weighting="briggs", niter=100000, nsigma=5.0, gain=0.3,
                  cycleniter=50)
    ref_prefix, ref_summary = serial(ms_lsrk, **params)
    assert ref_summary["stopcode"] == 8  # the case binds
    assert_plans_equal(serial, client, tmp_path, ms_lsrk, params, [None, [3, 4, 5]])


def test_10_shared_weight_density_writes_gridwt(topo32, serial, client, tmp_path):
    """perchanweightdensity=False (and superuniform): one density over all channels, written
    as <imagename>.gridwt as serial does; with 32 channels each chunk's data selection is
    narrowed to its own frequencies, so a chunk's own density would differ."""
    for weighting in ("briggs", "superuniform"):
        params = dict(IMAGING, weighting=weighting, perchanweightdensity=False, niter=0)
        ref = assert_plans_equal(serial, client, tmp_path / weighting, topo32, params, [None, [5, 27]])
        assert os.path.isdir(ref + ".gridwt")


def test_start_past_the_data_and_zero_width(ms_topo, serial, client, tmp_path):
    """Valid tclean calls that crashed after the cluster started: a start past the data's
    channels, width=0 (tclean's default width), spw='0:8~15' of a 12-channel spw."""
    for k, extra in enumerate((dict(start=100), dict(width=0), dict(spw="0:8~15"))):
        params = dict(IMAGING, weighting="natural", niter=0, **extra)
        try:
            ref = run_serial(ms_topo, str(tmp_path / f"ref{k}"), params)
        except RuntimeError:
            ref = None
        if ref is None:  # tclean refuses it: pclean must too, before any worker starts
            with pytest.raises(ParameterError):
                pclean(vis=ms_topo, imagename=str(tmp_path / "refused"), cluster=client,
                       chanchunk=2, **params)
        else:
            assert_plans_equal(serial, client, tmp_path / "_".join(extra), ms_topo, params, [2, 1])


def test_clark_equals_serial_at_its_default_threads(ms_topo, serial, client, tmp_path):
    """clark's results depend on serial's OpenMP thread count (1 vs 2 threads: 3.4e-6 of the
    residual's peak apart); chunks run their cycles at serial's count and are bitwise equal."""
    params = dict(IMAGING, weighting="briggs", niter=2000, deconvolver="clark",
                  cycleniter=50, outframe="LSRK")
    ref_prefix = assert_plans_equal(serial, client, tmp_path, ms_topo, params, [None, [5, 7]])
    for k in range(2):
        got = read(str(tmp_path / f"pc{k}.residual"))[0]
        assert np.array_equal(got, read(ref_prefix + ".residual")[0])
