"""Writing one final image from its chunks' images (runs on a worker).

* paged: the product is created at the full cube's shape and coordinate system and every
  chunk's images (its own channels) are inserted: every pixel is written once. Pixel masks,
  brightness unit, per-plane beams, image info and miscinfo are carried over as tclean writes
  them.
* virtual: no pixel is copied: casacore's ImageConcat references the chunks' images from inside
  the product directory ("movevirtual"): an image ``ia.open``/exportfits/viewers read, but not a
  plain table.
"""
from __future__ import annotations

from pclean import casa
from pclean.params.gatherplan import Part


def _own_channels(rg, shape: list[int], spec_axis: int, first: int, nchan: int) -> dict:
    """A box region of ``nchan`` planes from ``first`` on along the spectral axis."""
    blc, trc = [0] * len(shape), [n - 1 for n in shape]
    blc[spec_axis], trc[spec_axis] = first, first + nchan - 1
    return rg.box(blc=blc, trc=trc)


def assemble(out: str, parts: list[Part], single_beam: bool = False) -> str:
    """Write one product of the final cube from its chunks (runs on a worker). Its coordinate
    system is the first chunk's: the full cube's as a worker defined it (see workers)."""
    ct = casa.tools()
    ia, src, rg = ct.image(), ct.image(), ct.regionmanager()
    src.open(parts[0].path)
    shape = [int(n) for n in src.shape()]
    spec_axis = int(src.coordsys().findcoordinate("spectral")["pixel"][0])
    stokes_axis = int(src.coordsys().findcoordinate("stokes")["pixel"][0])
    unit, misc = src.brightnessunit(), src.miscinfo()
    cs = src.coordsys()
    csys = cs.torecord()
    cs.done()
    default_mask = src.maskhandler("default")[0]
    src.close()
    shape[spec_axis] = sum(p.nchan for p in parts)
    ia.fromshape(out, shape, csys=csys, overwrite=False, log=False)
    try:
        if default_mask:
            # tclean masks pixels below pblimit in .image/.residual/.pb ("mask0"); insert()
            # copies mask values only into an image that already has a default mask
            ia.calcmask("T", name=default_mask, asdefault=True)
        for part in parts:
            locate = [0] * len(shape)
            locate[spec_axis] = part.first
            ia.insert(infile=part.path, locate=locate, verbose=False,
                      region=_own_channels(rg, shape, spec_axis, part.local, part.nchan))
        if unit:
            ia.setbrightnessunit(unit)
        ia.setmiscinfo(misc)
    finally:
        ia.close()
        ia.done()
        src.done()
        rg.done()
    _write_imageinfo(out, parts, shape[spec_axis], shape[stokes_axis], single_beam)
    return out


def _write_imageinfo(out: str, parts: list[Part], nchan: int, nstokes: int = 1,
                     single_beam: bool = False) -> None:
    """Image type, object name and restoring beams of the chunks, as one cube's.

    Per-plane beams are written as casacore's ImageInfo record in one go: setting them plane by
    plane through ``ia.setrestoringbeam`` rewrites the whole beam set each time (1.5 s for 256
    channels). In that record plane ``*k`` is channel ``k % nChannels`` of Stokes
    ``k // nChannels`` (checked with ``ia.setrestoringbeam(channel=, polarization=)``)."""
    tb = casa.tools().table()
    infos = []
    for part in parts:
        tb.open(part.path)
        infos.append(tb.getkeyword("imageinfo"))
        tb.close()
    info = {k: v for k, v in infos[0].items() if k not in ("perplanebeams", "restoringbeam")}
    if (nchan > 1 and not single_beam
            and any("perplanebeams" in i or "restoringbeam" in i for i in infos)):
        beams = {"nChannels": nchan, "nStokes": nstokes}
        for part, part_info in zip(parts, infos):
            # CASA writes one image-wide beam (no per-plane set) for a 1-channel chunk
            planes = part_info.get("perplanebeams")
            n_in = int(planes["nChannels"]) if planes else 0
            for s in range(nstokes):
                for c in range(part.nchan):
                    src = (planes[f"*{s * n_in + part.local + c}"] if planes
                           else part_info["restoringbeam"])
                    beams[f"*{s * nchan + part.first + c}"] = src
        info["perplanebeams"] = beams
    elif "restoringbeam" in infos[0]:
        info["restoringbeam"] = infos[0]["restoringbeam"]
    tb.open(out, nomodify=False)
    try:
        tb.putkeyword("imageinfo", info)
    finally:
        tb.close()
        tb.done()


def virtual_concat(out: str, infiles: list[str]) -> str:
    ia = casa.tools().image()
    try:
        ia.open(infiles[0])
        misc = ia.miscinfo()
        ia.close()
        ia.imageconcat(outfile=out, infiles=infiles, axis=-1, relax=True, tempclose=False,
                       overwrite=False, mode="m").done()
        # ImageConcat merges every input's miscinfo with _1, _2 suffixes; keep tclean's keys
        ia.open(out)
        ia.setmiscinfo(misc)
        ia.close()
    finally:
        ia.done()
    return out
