"""tclean parameters -> the records casatools' imaging tools take, as casatasks builds them.

casatasks' ``ImagerParameters`` turns tclean's parameters into plain records per tool (data
selection, image, gridding, normalization, weighting, deconvolution, iteration), the image-side
ones keyed by field: "0" is the main field, "1", "2", ... outlier fields. The plan carries those
records (:class:`ImagingRecords`), never the live object, and keeps the field axis everywhere.
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

from pclean import casa
from pclean.casa import helpers
from pclean.params.errors import ParameterError
from pclean.params.gridders import takes_mosweight

# tclean's names -> the names casatasks' ImagerParameters takes (as task_tclean renames them)
_RENAMES = {"vis": "msname", "timerange": "timestr", "uvrange": "uvdist", "observation": "obs",
            "intent": "state", "gain": "loopgain", "smallscalebias": "scalebias"}


@dataclass(frozen=True)
class ImagingRecords:
    """The records casatasks' PySynthesisImager hands casatools for a tclean call."""

    selpars: dict  # {"ms0": selection, "ms1": ...}
    impars: dict  # {field: image parameters}
    gridpars: dict  # {field: gridding parameters}
    normpars: dict  # {field: normalizer parameters}
    weightpars: dict
    decpars: dict  # {field: deconvolver parameters}
    iterpars: dict

    @property
    def fields(self) -> list[str]:
        """The field keys in casatasks' order (the main field first)."""
        return sorted(self.impars, key=int)


def imager_parameters(p: dict, **overrides):
    """casatasks' ImagerParameters for ``p`` (coerced tclean parameters), as task_tclean
    builds it."""
    ImagerParameters = helpers.imager_helpers().ImagerParameters

    inp = {_RENAMES.get(k, k): v for k, v in p.items()}
    inp.update(overrides)
    inp["chanchunks"] = 1
    init = ImagerParameters.__init__
    names = init.__code__.co_varnames[1:init.__code__.co_argcount]
    defaults = dict(zip(names[-len(init.__defaults__):], init.__defaults__))
    bparm = {k: inp.get(k, defaults[k]) for k in names}
    if bparm["mosweight"] and not takes_mosweight(bparm["gridder"]):
        bparm["mosweight"] = False  # as task_tclean does
    ip = ImagerParameters(**bparm)
    if not ip.checkParameters():
        raise ParameterError("CASA rejected the imaging parameters (see the CASA log for why)")
    return ip


def records(p: dict, writes_model: bool = False) -> ImagingRecords:
    """The records, without the start model: CASA writes ``<imagename>.model`` from it as soon
    as an image is defined (SIImageStore::setModelImage, from defineimage), and again at the
    first initminorcycle (SynthesisDeconvolver::setStartingModel). The coordinator puts it on
    the cube's grid once (``cubewide.StartModel``, ``with_start_model``); chunks take their
    channels of that.

    The data are selected read-only, without a scratch model column, unless ``writes_model``
    (the one imager that saves the model, ``gather.savemodel``): with ``savemodel`` serial's
    selection writes the model into the MS in its last major cycle, and a chunk's would write
    its channels from several processes at once."""
    ip = imager_parameters(p)
    if writes_model:
        # CASA quirk: with nsigma, auto-multithresh or interactive, casatasks selects the data
        # read-only for the clean and saves the model in a separate predict after it, its
        # selection reset first (ImagerParameters.resetParameters, as task_tclean calls it);
        # without the reset the predict writes nothing (measured, fuzz seed 1093: nsigma=5,
        # serial's MODEL_DATA written, pclean's as it was)
        ip.resetParameters()
    impars, decpars, selpars = ip.getImagePars(), ip.getDecPars(), ip.getSelPars()
    for rec in (*impars.values(), *decpars.values()):
        if "startmodel" in rec:
            rec["startmodel"] = ""
    if not writes_model:
        for rec in selpars.values():
            rec.update(readonly=True, usescratch=False)
    return ImagingRecords(selpars=selpars, impars=impars,
                          gridpars=ip.getGridPars(), normpars=ip.getNormPars(),
                          weightpars=ip.getWeightPars(), decpars=decpars,
                          iterpars=ip.getIterPars())


def with_start_model(rec: ImagingRecords, startmodel) -> ImagingRecords:
    """``rec`` with the main field's start model back in its image parameters."""
    impars = dict(rec.impars)
    impars["0"] = dict(impars["0"], startmodel=startmodel)
    return dataclasses.replace(rec, impars=impars)


@contextlib.contextmanager
def full_imager(rec: ImagingRecords, imagename: str | None = None,
                gridpars: dict | None = None):
    """A synthesisimager over the whole selection with every field's full cube defined, as
    serial tclean defines them (no image is written until something is gridded): the one place
    that asks CASA about the cube as serial tclean sees it. ``imagename`` renames the images
    (field "0"; outlier fields get ``_<field>``), ``gridpars`` replaces the main field's."""
    si = casa.tools().synthesisimager()
    try:
        for key in sorted(rec.selpars):
            si.selectdata(rec.selpars[key])
        for f in rec.fields:
            impars = dict(rec.impars[f])
            if imagename:
                impars["imagename"] = imagename if f == "0" else f"{imagename}_{f}"
            si.defineimage(impars, (gridpars if gridpars and f == "0" else rec.gridpars[f]))
        yield si
    finally:
        si.done()
