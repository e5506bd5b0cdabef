"""Stage 1, on the coordinator: tclean's parameters -> a validated plan of plain records.

    schema       the one parameter schema (tclean's, read from casatasks, + pclean's own)
    validate     coercion and the checks that need no imager (``normalize``)
    refusals     calls pclean refuses up front, and why (cannot be equal / serial fails)
    resources    disk, directories, worker counts and quantities, checked before any worker
    interpolation  where CASA's frequency interpolation needs a wider gridded sub-cube
    imager       tclean parameters -> casatasks' imaging records; the full-cube imager
    spectral     the full cube's channel grid, and chunks cut from it
    cubewide     cube-wide values: one provider each (fracBW, weight density, pb model, ...)
    gridders     what pclean knows about each gridder family
    deconvolvers what it knows about CASA's cube deconvolvers
    chunking     chunk sizes, halos, ChunkSpec
    placement    chunks -> live workers (pure)
    costmodel    time and memory coefficients; ``forecast`` prices a plan
    gatherplan   which chunk image goes into which final image
    workdir      every path of the run's work directory
    plan         the Plan record, its manifest and identity
    resume       the same call continues an interrupted run; the work directory's lock
"""
from pclean.params.errors import ParameterError, cannot_be_equal, serial_fails
from pclean.params.plan import Plan, make_plan, with_chunks
from pclean.params.validate import check_serial_outputs, is_cube, normalize

__all__ = ["ParameterError", "Plan", "cannot_be_equal", "check_serial_outputs", "is_cube",
           "make_plan", "normalize", "serial_fails", "with_chunks"]
