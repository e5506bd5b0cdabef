"""Restoring beams as numbers: CASA's ``ia.restoringbeam()`` record to arcsec and degrees."""
from __future__ import annotations

import numpy as np

from pclean import casa


def beam_table(record: dict, nstokes: int, nchan: int) -> np.ndarray:
    """(3, nstokes, nchan): major, minor (arcsec), position angle (deg) of every plane; one beam
    for the whole image is repeated on every plane; NaN where the image has no beam."""
    out = np.full((3, nstokes, nchan), np.nan)
    if not record:
        return out
    qa = casa.tools().quanta()

    def values(beam):
        return (qa.convert(beam["major"], "arcsec")["value"],
                qa.convert(beam["minor"], "arcsec")["value"],
                qa.convert(beam["positionangle"], "deg")["value"])

    if "beams" not in record:  # one beam for every plane
        out[:] = np.array(values(record))[:, None, None]
        return out
    for c in range(nchan):
        per_chan = record["beams"].get(f"*{c}", {})
        for s in range(nstokes):
            beam = per_chan.get(f"*{s}")
            if beam is not None:
                out[:, s, c] = values(beam)
    return out
