"""What pclean knows about each of tclean's gridders, in one table.

A new gridder is one row here (and the cube-wide values it needs, in ``cubewide``): whether the
parallel path is verified for it, how its primary beam is made, whether it takes mosweight.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GridderFamily:
    name: str
    gridders: tuple[str, ...]  # tclean's names for it (and casatasks' normalized one)
    verified: bool  # chunks equal serial tclean (parity tests and the fuzzer)
    pb_with_psf: bool  # the gridder makes the pb while making the psf (no makepb)
    canned_pb_model: bool  # the pb is a canned model chosen per telescope and frequency
    mosweight: tuple[str, ...] = ()  # names task_tclean passes mosweight=True on for


FAMILIES = (
    GridderFamily("standard", ("standard", "gridft", "ft"), verified=True, pb_with_psf=True,
                  canned_pb_model=True),
    GridderFamily("wproject", ("wproject", "wprojectft"), verified=False, pb_with_psf=True,
                  canned_pb_model=True),
    GridderFamily("widefield", ("widefield",), verified=False, pb_with_psf=True,
                  canned_pb_model=True),
    GridderFamily("mosaic", ("mosaic", "mosaicft", "ftmosaic"), verified=False,
                  pb_with_psf=False, canned_pb_model=False, mosweight=("mosaic",)),
    GridderFamily("imagemosaic", ("imagemosaic",), verified=False, pb_with_psf=False,
                  canned_pb_model=False),
    GridderFamily("awproject", ("awproject", "awprojectft", "awp2", "awphpg"), verified=False,
                  pb_with_psf=False, canned_pb_model=False, mosweight=("awp2",)),
)


def takes_mosweight(gridder: str) -> bool:
    """task_tclean turns mosweight off for every gridder but these names ("default
    mosweight=True is tripping other gridders")."""
    return any(str(gridder) in fam.mosweight for fam in FAMILIES)


def family(gridder: str) -> GridderFamily:
    """The family of one of tclean's gridder names; ValueError if pclean does not know it."""
    name = str(gridder).strip().lower()
    for fam in FAMILIES:
        if name in fam.gridders:
            return fam
    raise ValueError(f"gridder {gridder!r} is not one of tclean's gridders")


def _verified(gridder) -> bool:
    try:
        return family(gridder).verified
    except ValueError:
        return False


UNSUPPORTED_GRIDDER = (_verified, "only the " + ", ".join(
    "/".join(f.gridders) for f in FAMILIES if f.verified) + " gridder is verified against "
    "tclean so far")
