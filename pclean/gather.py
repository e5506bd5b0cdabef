"""Chunks -> one final cube per product, with tclean's names.

casacore's ImageConcat joins the chunk images along the spectral axis; the coordinate system,
per-plane restoring beams and units come through unchanged (checked against serial tclean).
Two modes:

* ``paged`` (default): one ordinary CASA image per product; every pixel is copied once here
  (and once before, by the workers in parallel, for chunks with halo channels to drop).
* ``virtual``: the chunk images are moved inside the product directory and referenced from it
  (casacore's "movevirtual" concat): no pixel is copied, at the price of an image that is not a
  plain table (``ia.open``/exportfits/viewers read it; ``tb.open`` does not).
"""
from __future__ import annotations

import os
import shutil

from pclean import casaenv

_MODES = {"paged": "p", "virtual": "m"}


def chunk_products(chunk_imagenames: list[str], products: tuple[str, ...]) -> list[str]:
    """The products every chunk wrote; a product some chunks lack is an error."""
    found = []
    for prod in products:
        have = [os.path.isdir(f"{name}.{prod}") for name in chunk_imagenames]
        if all(have):
            found.append(prod)
        elif any(have):
            missing = [n for n, h in zip(chunk_imagenames, have) if not h]
            raise RuntimeError(f"product .{prod} is missing from chunks {missing}")
    return found


def gather(chunks: list, imagename: str, products: tuple[str, ...],
           mode: str = "paged") -> list[str]:
    """Write ``imagename.<product>`` for every product the chunks made; return the paths.

    ``chunks`` are the plan's ChunkSpecs, in channel order, after each worker wrote its own
    channels (``ChunkImager.write_own_products``: halo planes already dropped)."""
    ia = casaenv.tools().image()
    written = []
    for prod in chunk_products([c.own_imagename for c in chunks], products):
        out = f"{imagename}.{prod}"
        if os.path.exists(out):
            raise FileExistsError(f"{out} exists; not overwriting it")
        infiles = [f"{c.own_imagename}.{prod}" for c in chunks]
        if len(infiles) == 1:
            shutil.move(infiles[0], out)  # one chunk: its image is the cube
        else:
            result = ia.imageconcat(outfile=out, infiles=infiles, axis=-1, relax=True,
                                    tempclose=False, overwrite=False, mode=_MODES[mode])
            result.done()
            if mode == "paged":
                _restore_miscinfo(out, infiles[0])
        written.append(out)
    ia.done()
    return written


def _restore_miscinfo(out: str, first_chunk: str) -> None:
    """ImageConcat merges every input's miscinfo with _1, _2 suffixes; keep tclean's keys."""
    ia = casaenv.tools().image()
    ia.open(first_chunk)
    misc = ia.miscinfo()
    ia.close()
    ia.open(out)
    ia.setmiscinfo(misc)
    ia.close()
    ia.done()
