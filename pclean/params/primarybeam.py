"""Make every chunk use the primary-beam model serial tclean uses for the whole cube.

CASA quirk: for a cube with the standard gridder and no ``vptable``, the .pb is made in
``SynthesisImager::makePBImage``, which picks a canned beam model with
``PBMath::whichCommonPBtoUse(telescope, freq)`` at the frequency of the *image's first channel*,
then evaluates that one model at every plane's own frequency. For VLA, WSRT and ATCA the model
depends on the band: a 1.0-1.4 GHz VLA cube gets ``VLA_NVSS`` (its first channel is exactly
1.0 GHz, not inside the open L band), but a chunk starting at 1.06 GHz gets ``VLA_L`` and a pb
up to 1.7% wider. (Found by comparing chunk and serial pbs: forcing each model through a
vptable reproduces each exactly.) The coordinator picks the model from the full cube's first
channel, as serial does, and hands it to every chunk as a vptable. Other telescopes' models do
not depend on frequency and need nothing.
"""
from __future__ import annotations

import os

from pclean import casa

# PBMath::whichCommonPBtoUse (casa6 synthesis/TransformMachines/PBMath.cc), frequency-dependent
# part only; open intervals in GHz, first match wins.
_VLA_BANDS = [(35, 55, "VLA_Q"), (19, 35, "VLA_K"), (11, 19, "VLA_U"), (7, 11, "VLA_X"),
              (4, 7, "VLA_C"), (1, 2, "VLA_L"), (0.2, 0.4, "VLA_P")]


def serial_model(telescope: str, freq_ghz: float) -> str | None:
    """The canned model serial tclean picks for a cube starting at ``freq_ghz``; None if the
    choice does not depend on frequency."""
    f = freq_ghz
    if telescope == "VLA":
        for lo, hi, name in _VLA_BANDS:
            if lo < f < hi:
                return name
        return "VLA_4" if f < 0.1 else "VLA_NVSS"
    if telescope == "WSRT":
        if 3 < f < 6 or 0.8 < f < 2:
            return "WSRT"
        return "WSRT_LOW" if f < 0.8 and f != 0.5 else "WSRT"
    if telescope == "ATCA":
        for lo, hi, name in [(7, 12.5, "ATCA_X"), (4, 7, "ATCA_C"), (1, 3.5, "ATCA_16"),
                             (15, 26, "ATCA_K"), (30, 50, "ATCA_Q"), (80, 120, "ATCA_W")]:
            if (lo <= f < hi) if name == "ATCA_X" else (lo < f < hi):
                return name
        return "ATCA_L1"
    return None


def telescope_name(vis) -> str:
    tb = casa.tools().table()
    first = vis[0] if isinstance(vis, (list, tuple)) else vis
    tb.open(os.path.join(str(first), "OBSERVATION"))
    try:
        return str(tb.getcol("TELESCOPE_NAME")[0])
    finally:
        tb.close()


def pin_model(vis, first_freq_hz: float, path: str) -> str | None:
    """Write a vptable forcing serial's model to ``path``; return it, or None if not needed."""
    ct = casa.tools()
    telescope = telescope_name(vis)
    ghz = ct.quanta().convert({"value": float(first_freq_hz), "unit": "Hz"}, "GHz")["value"]
    model = serial_model(telescope, ghz)
    if model is None:
        return None
    vp = ct.vpmanager()
    vp.reset()
    vp.setcannedpb(telescope=telescope, commonpb=model, dopb=True, dosquint=False,
                   usesymmetricbeam=False)
    vp.saveastable(path)
    vp.reset()
    return path
