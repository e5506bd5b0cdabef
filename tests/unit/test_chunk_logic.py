"""The pieces that make chunks add up to serial's one cube, on constructed inputs (no imaging):
halo planes and who sends them, serial's psf beam fill, and the records combined for the
iterbot."""
from __future__ import annotations

import numpy as np
import pytest

from pclean.params import chunking, refusals
from pclean.params.chunking import ChunkSpec
from pclean.params.imager import ImagingRecords
from pclean.params.workdir import WorkDir
from pclean.run import iteration, psfbeams
from pclean.workers import psf

from fakes import ROWS, ROWS_FULL

RECORDS = ImagingRecords(selpars={}, impars={"0": {"imsize": 8}}, gridpars={"0": {}},
                         normpars={"0": {}}, weightpars={}, decpars={"0": {}}, iterpars={})


def _spec(index, first, n, before=0, after=0):
    return ChunkSpec(index=index, first=first, nchan=n, workdir=WorkDir("/w"), records=RECORDS,
                     cubewide={}, expected_freqs_hz=np.zeros(1), deconvolve=True,
                     halo_before=before, halo_after=after)


def test_chunk_sizes_as_a_list_must_cover_the_cube():
    assert chunking.sizes(10, 2, [3, 1, 6]) == [(0, 3), (3, 1), (4, 6)]
    with pytest.raises(ValueError, match="add up to 9 channels, the cube has 10"):
        chunking.sizes(10, 2, [3, 6])


def test_model_halo_follows_both_interpolations():
    assert chunking.model_halo("linear", 1.0) == 2
    assert chunking.model_halo("cubic", 1.0) == 4
    assert chunking.model_halo("nearest", 1.0) == 1
    assert chunking.model_halo("linear", 0.5) == 2  # image channels twice the data's
    assert chunking.model_halo("cubic", 2.0) == 6  # data channels twice the image's


def test_halos_are_clipped_at_the_cube_edges_and_linked_to_their_owners():
    nchan, h = 10, 2
    sizes = [(0, 1), (1, 1), (2, 5), (7, 3)]
    specs = [_spec(k, f, n, *chunking.halo(f, n, nchan, True, h))
             for k, (f, n) in enumerate(sizes)]
    assert [(s.halo_before, s.halo_after) for s in specs] == [(0, 2), (1, 2), (2, 2), (2, 0)]
    chunking.link_halos(specs)
    wd = WorkDir("/w")
    # chunk 1 (channel 1) needs channel 0 from chunk 0 and channels 2, 3 from chunk 2
    inputs = {plane: path for _f, plane, path in specs[1].halo_inputs}
    assert inputs == {0: wd.halo_plane(0), 2: wd.halo_plane(2), 3: wd.halo_plane(3)}
    # every halo plane is some chunk's own plane, written by exactly that chunk
    wanted = {p for s in specs for _f, _plane, p in s.halo_inputs}
    written = [p for s in specs for _f, _plane, p in s.halo_outputs]
    assert sorted(written) == sorted(wanted)
    assert ("0", 5, wd.halo_plane(7)) not in specs[2].halo_outputs
    assert ("0", 4, wd.halo_plane(6)) in specs[2].halo_outputs


def test_without_a_model_only_one_channel_chunks_grid_a_neighbour():
    assert chunking.halo(3, 4, 10, False) == (0, 0)
    assert chunking.halo(3, 1, 10, False) == (0, 1)
    assert chunking.halo(9, 1, 10, False) == (1, 0)
    assert chunking.halo(0, 1, 1, False) == (0, 0)


def test_gridded_subcubes_start_where_casa_sees_the_cubes_spacing():
    """GridStarts: a chunk whose gridded sub-cube would start at a channel where CASA's LSRK
    spacing rounds differently grids from the nearest allowed channel before it."""
    ok = [True, True, True, False, True, True, False, False, False, True, False]
    assert [chunking.grid_start(c, ok) for c in (0, 3, 5, 8, 9)] == [0, 2, 5, 5, 9]
    assert chunking.grid_start(7, None) == 7
    specs = chunking.chunk_specs([(0, 4), (4, 4), (8, 3)], WorkDir("/w"), RECORDS, {},
                                 np.arange(11.0), False, False, 2, grid_starts=ok)
    assert [(s.img_first, s.img_nchan) for s in specs] == [(0, 4), (4, 4), (5, 6)]
    # the frequencies a chunk checks are those of its gridded sub-cube
    assert list(specs[2].expected_freqs_hz) == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]


def test_a_chunk_owning_an_interpolation_anchor_grids_to_that_end_of_the_cube():
    """InterpAnchors: the chunk owning the spw's far-edge channel grids from the anchor's end
    of the cube; the others keep their own sub-cubes."""
    ranges = [(0, 3), (3, 3), (6, 4)]
    start = chunking.chunk_specs(ranges, WorkDir("/w"), RECORDS, {}, np.arange(10.0), False,
                                 False, 2, interp_anchors=[[8, "start"], [9, "start"]])
    assert [(s.img_first, s.img_nchan) for s in start] == [(0, 3), (3, 3), (0, 10)]
    end = chunking.chunk_specs(ranges, WorkDir("/w"), RECORDS, {}, np.arange(10.0), True,
                               False, 2, interp_anchors=[[1, "end"]])
    assert [(s.halo_before, s.halo_after) for s in end] == [(0, 7), (2, 2), (2, 0)]


def test_data_wider_than_image_channels_widen_every_chunks_gridded_subcube():
    # fuzz seed 2130: data channels 1.5 image channels, cubic: 5 each side (model_halo)
    assert chunking.halo(21, 1, 53, False, 2, 5) == (5, 5)
    assert chunking.halo(3, 4, 53, False, 2, 5) == (3, 5)
    assert chunking.halo(52, 1, 53, False, 2, 5) == (5, 0)
    assert chunking.halo(10, 4, 53, True, 2, 5) == (5, 5)  # the wider of model and data
    assert chunking.halo(10, 4, 53, True, 6, 5) == (6, 6)


def test_nsigma_over_several_stokes_planes_gets_no_one_channel_chunks():
    """Fuzz seed 2164: a 1-channel chunk judged Stokes V by Stokes I's noise. The default plan
    then makes chunks of 2 or more channels; a chanchunk asking for 1 is refused."""
    assert chunking.sizes(5, 4) == [(0, 2), (2, 1), (3, 1), (4, 1)]
    assert chunking.sizes(5, 4, min_size=2) == [(0, 3), (3, 2)]
    assert chunking.sizes(1, 4, min_size=2) == [(0, 1)]

    class Grid:
        nstokes, nchan = 2, 5

    p = dict(niter=10, nsigma=3.0, chanchunk=2)
    assert refusals.nsigma_per_stokes_needs_wide_chunks(p, Grid)
    assert not refusals.nsigma_per_stokes_needs_wide_chunks(dict(p, nsigma=0.0), Grid)
    assert refusals.chunk_sizes_asked(p, 5) == [2, 2, 1]
    assert refusals.chunk_sizes_asked(dict(p, chanchunk=[3, 2]), 5) == [3, 2]
    assert refusals.chunk_sizes_asked(dict(p, chanchunk=None), 5) == []


def _beam(major, minor=1.0):
    return {"major": {"unit": "arcsec", "value": major},
            "minor": {"unit": "arcsec", "value": minor},
            "positionangle": {"unit": "deg", "value": 0.0}}


def test_unfitted_channels_get_the_largest_valid_beam_of_their_subcube():
    beams = [_beam(b) for b in (5, 9, 7, 3, 4)]
    valid = [True, False, True, True, False]
    one = psfbeams.fill(beams, valid, [(0, 5)])
    assert [b["major"]["value"] for b in one] == [5, 7, 7, 3, 7]
    two = psfbeams.fill(beams, valid, [(0, 2), (2, 3)])
    assert [b["major"]["value"] for b in two] == [5, 5, 7, 3, 7]
    none = psfbeams.fill(beams, [False] * 5, [(0, 5)])
    assert none[0]["major"]["value"] == psfbeams.EMPTY_BEAM_ARCSEC


def test_unfitted_planes_are_read_from_what_casa_logged():
    log = ("INFO\tnSubCubeFitInMemory\tRequired memory ... => Subcubes: 2. Processes\n"
           "WARN\tSIImageStore::getPSFGaussian\t[Chan1:Pol0] Error Gaussian fit to PSF : x\n"
           "WARN\tSIImageStore::getPSFGaussian\t[Chan1:Pol1] Error Gaussian fit to PSF : x\n"
           "INFO\tSIImageStore::getPSFGaussian\tTime to fit Gaussian to PSF 0.1\n"
           "WARN\tSIImageStore::getPSFGaussian\tPSF is blank for[C0:P0] [C0:P1] [C2:P1] \n"
           "INFO\tSIImageStore::getPSFGaussian\tTime to fit Gaussian to PSF 0.1\n")
    # 7 planes in 2 sub-cubes of 4 and 3: sub-cube 1 starts at plane 4
    assert psf.unfitted_planes(log, 7) == {1, 4}
    warn_only = "WARN\tx\tPSF is blank for[C3:P0] \n"  # INFO filtered out of the log
    assert psf.unfitted_planes(warn_only, 5) == {3}


def test_the_init_record_is_serials_for_the_whole_cube():
    sums = iteration.MaskSums(2)
    recs = [dict(peakresidual=0.5, maxpsfsidelobe=0.2, peakresidualnomask=0.6, madrms=0.0,
                 nsigmathreshold=0.3, masksum=10.0),
            dict(peakresidual=0.4, maxpsfsidelobe=0.25, peakresidualnomask=0.7, madrms=0.0,
                 nsigmathreshold=0.35, masksum=0.0)]
    out = iteration.combine_init(recs, sums)
    assert out["nsigmathreshold"] == 0.35  # the largest, not the last merged
    assert out["maxpsfsidelobe"] == 0.25 and out["peakresidualnomask"] == 0.7
    assert out["masksum"] == 10.0
    # a chunk with an empty mask reports its peak over the whole image: serial counts it as 0
    assert out["peakresidual"] == 0.5
    # unchanged masks report -1 (serial's deconvolver does), the cube's sum is unchanged
    again = iteration.combine_init([dict(r, masksum=-1.0) for r in recs], sums)
    assert again["masksum"] == -1.0
    # one chunk's mask changes: serial reports the whole cube's new sum
    changed = iteration.combine_init([dict(recs[0], masksum=-1.0), dict(recs[1], masksum=4.0)],
                                     sums)
    assert changed["masksum"] == 14.0


def test_minor_cycle_summaries_get_serials_channel_numbers():
    specs = [_spec(0, 0, 2), _spec(1, 2, 3)]
    # without fullsummary: rows iterDone, peakRes, modelFlux, cycleThresh, deconId, chan;
    # chan = channel + stokes x channels of the deconvolver's image, two Stokes planes
    local0 = np.array([[1, 2, 3, 4], [0] * 4, [0] * 4, [0] * 4, [0] * 4, [0, 2, 1, 3]], float)
    local1 = np.array([[5, 6, 7, 8, 9, 1], [0] * 6, [0] * 6, [0] * 6, [0] * 6,
                       [0, 3, 1, 4, 2, 5]], float)
    chunks = [(s.first, s.nchan) for s in specs]
    out = iteration.combine_summaries([local0, local1], chunks, nchan=5, block=1000,
                                      fullsummary=False, rows=ROWS)
    assert out[5].tolist() == [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]
    assert out[0].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 1]
    # several channel blocks: numbered within each block (blocks of 2 channels here)
    blocks = iteration.combine_summaries([local0[:, ::2], local1[:, ::2]], chunks, nchan=5,
                                         block=2, fullsummary=False, rows=ROWS)
    assert blocks[5].tolist() == [0, 1, 2, 3, 4]


def test_fullsummary_counts_iterations_per_serial_block():
    specs = [_spec(0, 0, 2), _spec(1, 2, 2)]
    local = np.zeros((len(ROWS_FULL), 2))
    local[0] = [3, 4]  # iterDone of the two channels
    local[5] = [0, 1]  # chan
    out = iteration.combine_summaries([local, local.copy()], [(s.first, s.nchan) for s in specs],
                                      nchan=4, block=3, fullsummary=True, rows=ROWS_FULL)
    assert out[5].tolist() == [0, 1, 2, 3]
    assert out[8].tolist() == [0, 3, 7, 0]  # startIterDone restarts at serial's block of 3


def test_low_top_reaches_spw_top_only_where_its_lowest_channels_matter():
    """Fuzz seed 2143: a spw on pixels 17..38 (lowest 17); a chunk owning channel 18 and
    gridding 7..31 must grid to 38; one starting at 17 or owning nothing near 17 need not."""
    edges = [[17, 17, 38]]
    assert chunking.low_top(12, 15, 7, 31, edges, 5) == 38
    assert chunking.low_top(17, 10, 17, 31, edges, 5) == 31  # nothing below the spw's lowest
    assert chunking.low_top(27, 12, 22, 38, edges, 5) == 38
    assert chunking.low_top(0, 8, 0, 12, edges, 5) == 12  # owns nothing the spw's edge reaches
    assert chunking.low_top(12, 15, 7, 31, [], 5) == 31
    specs = chunking.chunk_specs([(0, 12), (12, 15), (27, 12)], WorkDir("/w"), RECORDS, {},
                                 np.arange(39.0), True, False, 5, low_edges=edges)
    assert [(s.img_first, s.img_first + s.img_nchan - 1) for s in specs] == [
        (0, 16), (7, 38), (22, 38)]
