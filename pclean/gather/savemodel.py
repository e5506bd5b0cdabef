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

from pclean import casa
from pclean.casa import frames
from pclean.params.imager import full_imager, records
from pclean.workers import planes


def save(plan, model: str) -> float:
    """Predict ``model`` (the final model cube, whole) into the MSs as serial's
    ``savemodel`` would; the seconds it took. A run without a model (niter=0, no start model)
    still opens the selection as serial's does (a missing model column is made)."""
    t0 = time.time()
    p = plan.params
    rec = records(p, writes_model=True)
    prefix = plan.workdir.savemodel
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    shutil.rmtree(f"{prefix}.model", ignore_errors=True)  # left by an interrupted attempt
    has_model = os.path.isdir(model)
    if has_model:
        planes.copy_planes(model, 0, plan.grid.nchan, f"{prefix}.model")
    frames.start_afresh(p["vis"])  # as a fresh serial process defines its cube
    with full_imager(rec, imagename=prefix) as si:
        if has_model:
            si.predictmodel()
    casa.log(f"pclean: savemodel={p['savemodel']!r} written in {time.time() - t0:.1f} s")
    return time.time() - t0
