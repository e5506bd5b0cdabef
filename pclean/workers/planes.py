"""Channel planes of CASA images moved between a chunk's gridded sub-cube, its own-channel
images and the files neighbouring chunks exchange model planes through (see ChunkSpec).

All images here are tclean's [ra, dec, stokes, frequency] cubes of one chunk."""
from __future__ import annotations

import os

import numpy as np

from pclean import casa


def _spectral_axis(ia) -> int:
    cs = ia.coordsys()
    try:
        return int(cs.findcoordinate("spectral")["pixel"][0])
    finally:
        cs.done()


def _box(ia, first: int, n: int) -> tuple[list[int], list[int]]:
    shape = [int(s) for s in ia.shape()]
    axis = _spectral_axis(ia)
    blc, trc = [0] * len(shape), [s - 1 for s in shape]
    blc[axis], trc[axis] = first, first + n - 1
    return blc, trc


def copy_planes(src: str, first: int, n: int, dst: str) -> None:
    """Planes ``first`` .. ``first+n-1`` of ``src`` into ``dst``: a new image (pixels, pixel
    mask, per-plane beams, unit, image info and miscinfo, as a sub-image of ``src`` has them)
    or, if ``dst`` exists, its pixel values."""
    ct = casa.tools()
    ia = ct.image()
    ia.open(src)
    try:
        blc, trc = _box(ia, first, n)
        if os.path.isdir(dst):
            pixels = ia.getchunk(blc=blc, trc=trc)
        else:
            rg = ct.regionmanager()
            try:
                ia.subimage(outfile=dst, region=rg.box(blc=blc, trc=trc), dropdeg=False,
                            overwrite=False).done()
            finally:
                rg.done()
            mask = ia.maskhandler("default")[0]
            if mask:
                _keep_mask(dst, mask, ia.getchunk(blc=blc, trc=trc, getmask=True))
            return
    finally:
        ia.close()
        ia.done()
    put_planes(dst, 0, pixels)


def _keep_mask(path: str, name: str, values: np.ndarray) -> None:
    """Give ``path`` the default pixel mask ``name`` with ``values``. CASA quirk: a sub-image
    written to disk keeps its source's mask only if some pixel is masked, and then as 'mask0'
    whatever it was called; tclean writes mask0 below pblimit even when no pixel is below."""
    ia = casa.tools().image()
    ia.open(path)
    try:
        masks = list(ia.maskhandler("get"))
        if name not in masks:
            if masks and masks != ["T"]:
                ia.maskhandler("rename", [masks[0], name])
            else:
                ia.calcmask("T", name=name, asdefault=True)
        ia.maskhandler("set", name)
        ia.putregion(pixelmask=values, usemask=False)
    finally:
        ia.close()
        ia.done()


def read_planes(path: str, first: int = 0, n: int | None = None) -> np.ndarray:
    ia = casa.tools().image()
    ia.open(path)
    try:
        if n is None:
            return ia.getchunk()
        blc, trc = _box(ia, first, n)
        return ia.getchunk(blc=blc, trc=trc)
    finally:
        ia.close()
        ia.done()


def put_planes(path: str, first: int, pixels: np.ndarray) -> None:
    """Write ``pixels`` (whole planes) into ``path`` from plane ``first`` on."""
    ia = casa.tools().image()
    ia.open(path)
    try:
        blc = [0] * len(pixels.shape)
        blc[_spectral_axis(ia)] = int(first)
        ia.putchunk(pixels=np.asarray(pixels, dtype=np.float32), blc=blc)
    finally:
        ia.close()
        ia.done()


def ensure_like(path: str, template: str, unit: str = "") -> None:
    """An image of zeros shaped and placed like ``template``, unless ``path`` exists."""
    if os.path.isdir(path):
        return
    ia = casa.tools().image()
    ia.open(template)
    try:
        shape = [int(s) for s in ia.shape()]
        cs = ia.coordsys()
        csys = cs.torecord()
        cs.done()
    finally:
        ia.close()
    try:
        ia.fromshape(path, shape, csys=csys, overwrite=False, log=False)
        if unit:
            ia.setbrightnessunit(unit)
    finally:
        ia.close()
        ia.done()


def save(path: str, pixels: np.ndarray) -> None:
    """Write a plane file whole or not at all (a neighbour may read it next)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.npy"
    np.save(tmp, pixels)
    os.replace(tmp, path)


def load(path: str) -> np.ndarray:
    return np.load(path)


def version(path: str, cycle: int) -> str:
    """A halo plane file as its owner left it after its minor cycle ``cycle`` (1, 2, ...).
    Every version is kept: a chunk rebuilt on another worker replays its cycles and must read
    each neighbour plane as it was then (``run.chunkset``)."""
    return f"{path[:-len('.npy')]}.c{cycle:04d}.npy"


def drop_after(path: str, cycle: int) -> None:
    """Remove the versions of a halo plane written after minor cycle ``cycle`` (by a cycle
    that is being done again)."""
    import glob

    stem = path[:-len(".npy")]
    for found in glob.glob(f"{glob.escape(stem)}.c[0-9][0-9][0-9][0-9].npy"):
        if int(found[-len("0000.npy"):-len(".npy")]) > cycle:
            os.remove(found)


def latest(path: str, cycle: int) -> str | None:
    """The newest version of a halo plane written in minor cycle ``cycle`` or before (an owner
    that did no iterations in a cycle leaves none for it); None if there is none."""
    for c in range(cycle, 0, -1):
        if os.path.exists(version(path, c)):
            return version(path, c)
    return None


def miscinfo(path: str) -> dict:
    ia = casa.tools().image()
    ia.open(path)
    try:
        return dict(ia.miscinfo())
    finally:
        ia.close()
        ia.done()


def add_miscinfo(path: str, info: dict) -> None:
    """Add the keys of ``info`` that ``path``'s miscinfo lacks."""
    ia = casa.tools().image()
    ia.open(path)
    try:
        have = dict(ia.miscinfo())
        if set(info) - set(have):
            ia.setmiscinfo({**info, **have})
    finally:
        ia.close()
        ia.done()
