"""The image products of a run, by tclean's names: the vocabulary every stage shares.

A product is ``<imagename>.<product>``. The chunks write the chunk products of their channels;
the coordinator makes the cube products once for the whole cube (the shared weight density)."""
from __future__ import annotations

CHUNK_PRODUCTS = ("psf", "residual", "model", "image", "pb", "sumwt", "mask", "image.pbcor",
                  "weight")
CUBE_PRODUCTS = ("gridwt",)  # serial leaves the shared weight density as <imagename>.gridwt
PRODUCTS = CHUNK_PRODUCTS + CUBE_PRODUCTS

# restored products: one beam for the cube when tclean restores with one (restoringbeam='common'
# or a given beam), else a beam per plane (as the psf always has)
RESTORED = ("image", "image.pbcor")


def expected(deconvolves: bool, restores: bool, pbcor: bool, shared_density: bool) -> tuple:
    """The products a standard-gridder cube run writes (for forecasts; a run gathers what its
    chunks actually wrote)."""
    out = ["psf", "residual", "pb", "sumwt"]
    if deconvolves:
        out += ["model", "mask"]
    if restores:
        out += ["image"] + (["image.pbcor"] if pbcor else [])
    if shared_density:
        out.append("gridwt")
    return tuple(out)
