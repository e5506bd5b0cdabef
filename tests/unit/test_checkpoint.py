"""The checkpoints a resume starts from, without CASA: records read back as CASA returned them
(types and bits), a line cut short by a crash is not a stretch, a chunk's state after its
stretches, and the undo of a stretch in progress."""
from __future__ import annotations

import os

import numpy as np

from pclean.run import checkpoint
from pclean.workers.undo import Undo


def test_records_read_back_equal_and_of_the_same_types():
    record = {"iterdone": 12, "peakresidual": 0.1 + 0.2, "flag": True, "none": None,
              "nan": float("nan"), "inf": float("-inf"), "f32": np.float32(0.37248808),
              "i32": np.int32(7), "summary": np.arange(12, dtype=np.float64).reshape(3, 4) / 7,
              "beams": [{"major": {"unit": "arcsec", "value": 31.123456789012345}}],
              "call": ("minor_cycle", {"cycleniter": 5}), 3: "an int key"}
    back = checkpoint.decode(checkpoint.encode(record))
    assert back.keys() == record.keys()
    for key, value in record.items():
        got = back[key]
        assert type(got) is type(value), key
        if isinstance(value, np.ndarray):
            assert got.dtype == value.dtype and np.array_equal(got, value)
        elif isinstance(value, float) and np.isnan(value):
            assert np.isnan(got)
        else:
            assert got == value, key
    assert checkpoint.same_calls([[("a", {"x": 1.5})]], [[("a", {"x": 1.5})]])
    assert not checkpoint.same_calls([[("a", {"x": 1.5})]], [[("a", {"x": 1.5000001})]])


def test_a_line_cut_short_is_not_a_stretch(tmp_path):
    log = checkpoint.StretchLog(str(tmp_path / "stretches.jsonl"))
    log.append([[("make_psf",)]], [[{"beams": {}}]])
    log.append([[("minor_cycle", {"n": 1})]], [[{"iterdone": 3}]])
    with open(log.path, "a") as f:
        f.write('{"calls": [[{"t": ["major')  # the coordinator died writing
    stretches = log.read()
    assert [calls[0][0][0] for calls, _ in stretches] == ["make_psf", "minor_cycle"]
    log.truncate(len(stretches))
    log.append([[("major_cycle", {})]], [[None]])
    assert [calls[0][0][0] for calls, _ in log.read()] == ["make_psf", "minor_cycle",
                                                            "major_cycle"]


def test_a_chunks_state_after_its_stretches():
    calls = [[("make_psf",), ("make_pb",), ("major_cycle", {})],
             [("set_psf_beams", None), ("init_minor",), ("setup_mask",), ("init_minor",)],
             [("minor_cycle", {})], [("major_cycle", {}), ("setup_mask",), ("init_minor",)],
             [("minor_cycle", {})]]
    psf = {"beams": {}, "report": {"fracbw": 0.13}}
    assert checkpoint.chunk_state(calls[:2], psf) == {
        "stretches": 2, "minor_done": 0, "reinit": True, "psf_made": True,
        "report": {"fracbw": 0.13}}
    assert checkpoint.chunk_state(calls, psf)["minor_done"] == 2
    assert not checkpoint.chunk_state(calls, psf)["reinit"]
    assert checkpoint.chunk_state([], None) == {"stretches": 0, "minor_done": 0,
                                                "reinit": False, "psf_made": False,
                                                "report": {}}


def _image(path: str, text: str) -> None:
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "table.f0"), "w") as f:
        f.write(text)


def _read(path: str) -> str | None:
    if not os.path.exists(path):
        return None
    with open(os.path.join(path, "table.f0")) as f:
        return f.read()


def test_the_stretch_in_progress_is_undone(tmp_path):
    chunk = str(tmp_path / "chunk-0000")
    model, mask = os.path.join(chunk, "c.model"), os.path.join(chunk, "c.mask")
    busy = {}
    undo = Undo(chunk, busy)
    undo.start(3)
    undo.keep(3, mask)  # no mask yet
    _image(mask, "mask 3")
    undo.keep(3, model)
    _image(model, "model 3")
    undo.start(4)  # stretch 3 is checkpointed: its copies go
    assert not os.path.exists(os.path.join(chunk, "undo", "000003"))
    undo.keep(4, model)
    _image(model, "model 4, half written")
    undo.keep(4, model)  # a second change in the same stretch keeps the first state
    _image(model, "model 4, written again")
    assert undo.roll_back(4) == []  # stretch 4 is complete: nothing to undo
    assert undo.roll_back(3) == [model]
    assert _read(model) == "model 3" and _read(mask) == "mask 3"
    assert busy["undo"] > 0
    # a stretch that made the mask, undone back to before it: the mask goes
    undo.start(5)
    undo.keep(5, os.path.join(chunk, "c.residual"))
    _image(os.path.join(chunk, "c.residual"), "residual 5")
    undo.roll_back(4)
    assert not os.path.exists(os.path.join(chunk, "c.residual"))
    assert not os.listdir(os.path.join(chunk, "undo"))
