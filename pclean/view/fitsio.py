"""Final products -> FITS, as CASA's ``exportfits`` writes them.

casatools' ``image.tofits`` with exportfits' defaults: frequency as the spectral axis
(velocity=False), 32-bit floats, Stokes axis last, the image history as HISTORY cards, and,
for images with per-plane restoring beams (cubes from tclean/pclean), a ``BEAMS`` binary table
extension (BMAJ, BMIN [arcsec], BPA [deg], CHAN, POL; header card CASAMBM = T) that astropy,
casatools and radio-beam read back. Pixels outside the image's pixel mask are written as NaN.
Works on plain CASA images and on pclean's virtual concatenations alike.
"""
from __future__ import annotations

import os

from pclean import casa
from pclean.view.dataset import _CASA_LOCK, product_paths

# exportfits' defaults (casatasks task_exportfits)
TOFITS_OPTIONS = dict(velocity=False, optical=False, bitpix=-32, minpix=0, maxpix=-1,
                      dropdeg=False, dropstokes=False, stokeslast=True, history=True)


def export(imagepath: str, fitspath: str, overwrite: bool = False) -> str:
    """Write the CASA image ``imagepath`` to ``fitspath``; return ``fitspath``.

    FileNotFoundError if the image does not exist; FileExistsError if ``fitspath`` exists and
    ``overwrite`` is False.
    """
    imagepath, fitspath = os.fspath(imagepath), os.fspath(fitspath)
    if not os.path.isdir(imagepath):
        raise FileNotFoundError(f"image {imagepath} not found")
    if os.path.exists(fitspath) and not overwrite:
        raise FileExistsError(f"{fitspath} exists (overwrite=True or --overwrite replaces it)")
    parent = os.path.dirname(os.path.abspath(fitspath))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"output directory {parent} does not exist")
    with _CASA_LOCK:
        ia = casa.tools().image()
        try:
            ia.open(imagepath)
            ok = ia.tofits(outfile=fitspath, overwrite=bool(overwrite), **TOFITS_OPTIONS)
        finally:
            ia.close()
            ia.done()
    if ok is False or not os.path.isfile(fitspath):
        raise RuntimeError(f"CASA could not write {fitspath} (see the CASA log)")
    return fitspath


def export_all(prefix: str, outdir: str | None = None, products=None,
               overwrite: bool = False) -> list[str]:
    """Export ``<prefix>.<product>`` for every product (default: all that exist) to
    ``<outdir>/<basename(prefix)>.<product>.fits`` (default outdir: beside the images).

    Every target is checked before anything is written, so an existing file stops the whole
    export rather than leaving it half done.
    """
    paths = product_paths(prefix, products)
    if outdir is not None:
        outdir = os.fspath(outdir)
        os.makedirs(outdir, exist_ok=True)
    targets = {}
    for prod, path in paths.items():
        name = path + ".fits"
        targets[path] = name if outdir is None else os.path.join(outdir, os.path.basename(name))
    if not overwrite:
        existing = [t for t in targets.values() if os.path.exists(t)]
        if existing:
            raise FileExistsError("FITS file(s) exist: " + ", ".join(existing)
                                  + " (overwrite=True or --overwrite replaces them)")
    return [export(path, target, overwrite=overwrite) for path, target in targets.items()]
