"""``savemodel``: the final model into the MeasurementSet, once, from the coordinator.

Serial tclean writes it in its last major cycle: the model column (``'modelcolumn'``: the
selection is opened for writing with a scratch column, created if missing) or the virtual model
(``'virtual'``: the FTMachine's record and its transformed model, in the SOURCE table). Chunks
would write the same rows from several processes, each the data channels its sub-cube selects,
halo channels twice. The chunks' selections are read-only (``imager.records``); after the gather
has assembled the final model, and before any product appears, one full-cube imager with
serial's selection predicts it into the MS (synthesisimager.predictmodel, what tclean itself
calls to save a model after an automasked or n-sigma clean).

Measured (a VLA cube, briggs, 12 channels): MODEL_DATA bit-identical to serial tclean's, every
other column unchanged; the virtual model's record equal to serial's but for the name of its
image in the SOURCE table (it carries the writing process's id) and ``nantenna`` (an FTMachine
member CASA never initialises: 1 in one serial run's record, 0 in two others, 3112779921 in the
coordinator's), and that image's pixels equal.
"""
from __future__ import annotations

import os
import shutil
import time

import numpy as np

from pclean import casa
from pclean.casa import frames
from pclean.params.imager import full_imager, records
from pclean.workers import planes


def _skipped_rows(ms: str) -> np.ndarray:
    """The rows serial's major cycle leaves as they are: those of its visibility buffers (one
    time, field and spw) whose every row is flagged. CASA quirk: predictmodel writes zeros
    there (measured, fuzz seed 1141: 1053 rows of field 1 at its last three times, all flagged,
    kept their model in serial)."""
    tb = casa.tools().table()
    tb.open(str(ms))
    try:
        keys = np.stack([tb.getcol("TIME"), tb.getcol("FIELD_ID"), tb.getcol("DATA_DESC_ID")])
        sub = tb.query("FLAG_ROW || all(FLAG)")
        flagged = np.zeros(keys.shape[1], dtype=bool)
        flagged[sub.rownumbers()] = True
        sub.close()
    finally:
        tb.close()
        tb.done()
    _groups, group = np.unique(keys, axis=1, return_inverse=True)
    group = np.ravel(group)
    unflagged = np.zeros(group.max() + 1 if group.size else 0, dtype=bool)
    np.logical_or.at(unflagged, group, ~flagged)
    return np.flatnonzero(~unflagged[group])


def _cells(ms: str, rows) -> dict:
    tb = casa.tools().table()
    tb.open(str(ms))
    try:
        return {int(r): tb.getcell("MODEL_DATA", int(r)) for r in rows}
    finally:
        tb.close()
        tb.done()


def _put_cells(ms: str, cells: dict) -> None:
    if not cells:
        return
    tb = casa.tools().table()
    tb.open(ms, nomodify=False)
    try:
        for r, value in cells.items():
            tb.putcell("MODEL_DATA", r, value)
    finally:
        tb.close()
        tb.done()


def save(plan, model: str, template: str) -> float:
    """Predict ``model`` (the final model cube, whole) into the MSs as serial's
    ``savemodel`` would; the seconds it took. A run without a model (niter=0, no start model)
    predicts an empty one shaped like ``template`` (the final residual): serial's last major
    cycle writes the model's visibilities, zeros, all the same (measured, fuzz seed 1063:
    without it the model column of the image's channels kept what was there)."""
    t0 = time.time()
    p = plan.params
    rec = records(p, writes_model=True)
    prefix = plan.workdir.savemodel
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    shutil.rmtree(f"{prefix}.model", ignore_errors=True)  # left by an interrupted attempt
    if os.path.isdir(model):
        planes.copy_planes(model, 0, plan.grid.nchan, f"{prefix}.model")
    else:
        planes.ensure_like(f"{prefix}.model", template, unit="Jy/pixel")
    frames.start_afresh(p["vis"])  # as a fresh serial process defines its cube
    kept = {}
    with full_imager(rec, imagename=prefix) as si:
        # CASA quirk: serial's cube major cycle narrows the data selection to the image's
        # channels before it degrids (CubeMajorCycleAlgorithm); predictmodel alone writes
        # every selected channel, zeros outside the image (measured, fuzz seed 1047: a cube
        # from data channel 5 left serial's MODEL_DATA of channels 0-2 as they were, pclean's
        # zero)
        si.tuneselectdata()
        if p["savemodel"] == "modelcolumn":  # the selection has made the column if missing
            kept = {ms: _cells(ms, _skipped_rows(ms)) for ms in np.atleast_1d(p["vis"])}
        si.predictmodel()
    for ms, cells in kept.items():
        _put_cells(str(ms), cells)
    seconds = time.time() - t0
    casa.log(f"pclean: savemodel={p['savemodel']!r} written in {seconds:.1f} s")
    return seconds
