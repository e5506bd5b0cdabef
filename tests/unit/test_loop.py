"""tclean's cycle loop and the cube-wide iteration control, on in-process fakes (no CASA,
milliseconds): the order of steps, one budget and the same controls for every chunk, records
combined per field, beams written where they must be, chunks closed on failure, events."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fakes import ROWS, FakeChunk, FakeChunkSet, FakeIterBot, beam, fake_plan
from pclean.run import events, loop
from pclean.run.iteration import CubeIterationControl
from pclean.workers.steps import step

RANGES = [(0, 3), (3, 2)]
PEAKS = [[1.0, 0.5, 0.2], [0.8, 0.05]]
# the cube's beams made whole without CASA: one sub-cube, the fill itself is the real one
BEAMS = loop.CubeBeams(subcubes=lambda nchan, _memreq: [(0, nchan)],
                       common=lambda beams, nstokes: ["%.1farcsec" % max(
                           b["major"]["value"] for b in beams), "1arcsec", "0deg"])


def _run(niter=100, cycleniter=-1, threshold=0.0, fields=("0",), ranges=RANGES, peaks=PEAKS,
         observers=None, **plan_kw):
    plan = fake_plan(ranges, fields=fields, niter=niter, **plan_kw)
    chunks = FakeChunkSet([FakeChunk(i, f, p, fields) for i, ((f, _), p) in
                           enumerate(zip(ranges, peaks))], observers)
    ib = FakeIterBot()
    control = None
    if niter > 0:
        control = CubeIterationControl(
            ib, {"niter": niter, "cycleniter": cycleniter, "threshold": threshold,
                 "cyclefactor": 1.0, "loopgain": 0.5, "nmajor": -1},
            [(c.first, c.nchan) for c in plan.chunks], plan.grid.nchan, 64, False, ROWS, fields)
    outcome = loop.cycles(plan, chunks, control, BEAMS)
    return outcome, chunks, ib


def test_the_steps_run_in_tcleans_order():
    _outcome, chunks, _ib = _run(threshold=0.1)
    s = chunks.stretches
    assert s[0] == ("make_psf", "make_pb", "major_cycle")
    assert s[1] == ("set_psf_beams", "init_minor", "setup_mask", "init_minor")
    body = s[2:-1]
    assert body[0::2] == [("minor_cycle",)] * (len(body) // 2)
    assert body[1::2] == [("major_cycle", "setup_mask", "init_minor")] * (len(body) // 2)
    assert s[-1] == ("finish", "restore", "status", "close")


def test_one_niter_budget_for_the_cube_and_the_same_controls_for_every_chunk():
    outcome, chunks, ib = _run(niter=7)
    assert outcome.summary["iterdone"] == 7 and outcome.summary["stopcode"] == 1
    per_chunk = [[args[0] for name, args in c.calls if name == "minor_cycle"]
                 for c in chunks.chunks]
    assert per_chunk[0] == per_chunk[1] and per_chunk[0]
    # the budget is split over cycles by the controls, never exceeded
    assert per_chunk[0][0]["cycleniter"] == 7
    assert sum(int(r["iterdone"]) for _f, r in ib.merged_exec) == 7


def test_the_threshold_stops_the_loop_and_the_major_cycles_are_counted():
    outcome, chunks, _ib = _run(threshold=0.1)
    assert outcome.summary["stopcode"] == 2
    assert max(p for c in chunks.chunks for p in c.peaks["0"]) <= 0.1
    majors = sum(1 for st in chunks.stretches if "major_cycle" in st)
    assert outcome.summary["nmajordone"] == majors  # the first major cycle is one of them


def test_the_combined_summary_numbers_cube_channels():
    outcome, _chunks, _ib = _run(niter=4)
    summ = outcome.summary["summaryminor"]
    chan = summ[ROWS.index("chan")]
    assert sorted(set(chan.tolist())) <= list(range(5))
    assert chan[:5].tolist() == [0, 1, 2, 3, 4]  # chunk 1's local 0, 1 are cube 3, 4


def test_without_deconvolution_the_loop_makes_psf_residual_and_restores_nothing():
    outcome, chunks, _ib = _run(niter=0, restoration=False)
    assert outcome.summary == {}
    assert chunks.stretches == [("make_psf", "make_pb", "major_cycle"),
                                ("set_psf_beams", "finish", "status", "close")]
    assert [s["chunk"] for s in outcome.status] == [0, 1]


def test_unfitted_psf_beams_are_filled_over_the_cube_and_written_where_they_change():
    plan = fake_plan(RANGES, niter=0, restoration=False)
    fakes = [FakeChunk(0, 0, PEAKS[0], beams=[beam(4), beam(6), beam(5)]),
             FakeChunk(1, 3, PEAKS[1], beams=[beam(3), beam(3)], valid=[True, False])]
    chunks = FakeChunkSet(fakes)
    loop.cycles(plan, chunks, None, BEAMS)
    written = [args[0] for c in fakes for name, args in c.calls if name == "set_psf_beams"]
    assert written[0] == {"0": None}  # chunk 0's own beams are the cube's
    assert [b["major"]["value"] for b in written[1]["0"]] == [3, 6]  # the cube's largest


def test_a_common_beam_goes_to_every_chunks_restore():
    plan = fake_plan(RANGES, niter=0, common=True)
    fakes = [FakeChunk(0, 0, PEAKS[0], beams=[beam(4)] * 3), FakeChunk(1, 3, PEAKS[1],
                                                                       beams=[beam(7)] * 2)]
    loop.cycles(plan, FakeChunkSet(fakes), None, BEAMS)
    restores = [args for c in fakes for name, args in c.calls if name == "restore"]
    common = {"0": ["7.0arcsec", "1arcsec", "0deg"]}
    # the largest beam's plane (serial's getCommonBeam writes the common beam there): chunk 1's
    assert restores == [[common, False, {"0": None}], [common, False, {"0": 0}]]


def test_every_field_is_merged_with_its_own_index():
    outcome, chunks, ib = _run(niter=20, fields=("0", "1"))
    assert {f for f, _r in ib.merged_init} == {0, 1}
    assert {f for f, _r in ib.merged_exec} == {0, 1}
    # each field's deconvolver iterates under the same controls; the cube counts them all
    assert outcome.summary["iterdone"] == sum(int(r["iterdone"]) for _f, r in ib.merged_exec)
    assert [f for f, _r in ib.merged_exec][:2] == [0, 1]  # fields in casatasks' order
    assert all(c.calls[-1][0] == "close" for c in chunks.chunks)


def test_a_failing_chunk_closes_every_chunk_and_the_error_names_the_step():
    plan = fake_plan(RANGES, niter=10)
    fakes = [FakeChunk(0, 0, PEAKS[0]), FakeChunk(1, 3, PEAKS[1], fail_in="minor_cycle")]
    control = CubeIterationControl(FakeIterBot(), {"niter": 10}, RANGES, 5, 64, False, ROWS)
    with pytest.raises(RuntimeError, match="minor_cycle"):
        loop.cycles(plan, FakeChunkSet(fakes), control, BEAMS)
    assert all(c.closed for c in fakes)


def test_events_reach_the_observers(tmp_path):
    timings = events.Timings()
    lines = []
    ledger = events.Ledger(str(tmp_path / "ledger.jsonl"))
    _outcome, _chunks, ib = _run(niter=6, observers=[timings, events.ProgressLog(lines.append),
                                                     ledger])
    assert {"psf", "minor", "major", "restore"} <= set(timings.seconds)
    assert len(lines) == sum(1 for f, _r in ib.merged_exec)
    assert lines[-1].endswith(f"({ib.iterdone} in all), peak residual "
                              f"{max(r['peakresidual'] for _f, r in ib.merged_exec[-1:]):.6g}")
    recorded = [json.loads(line) for line in open(tmp_path / "ledger.jsonl")]
    kinds = [r["event"] for r in recorded]
    assert kinds[0] == "StretchStarted" and "Iterations" in kinds and kinds[-1] == "Busy"
    iterations = [r for r in recorded if r["event"] == "Iterations"]
    assert iterations[-1]["total"] == ib.iterdone >= 6  # cycleniter counts per channel


def test_a_stretch_cannot_return_two_results_under_one_key():
    chunks = FakeChunkSet([FakeChunk(0, 0, [1.0])])
    with pytest.raises(ValueError, match="same key"):
        chunks.run(step("init_minor"), step("init_minor"))
    res = chunks.run(step("init_minor", key="a"), step("init_minor", key="b"))
    assert set(res) == {"a", "b"}
    with pytest.raises(ValueError, match="not a chunk step"):
        step("no_such_step")
    assert np.isclose(res["a"][0]["0"]["peakresidual"], 1.0)
