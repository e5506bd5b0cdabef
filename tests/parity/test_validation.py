"""Bad input gets a clear error before any worker starts, and nothing the user had is touched."""
from __future__ import annotations

import inspect
import os

import pytest

from conftest import call_nowhere
from pclean import ParameterError, pclean
from pclean.params import schema

call = call_nowhere


@pytest.mark.parametrize("kw, message", [
    (dict(vis="/no/such.ms"), "vis"),
    (dict(imsize=0), "imsize"),
    (dict(imsize=[32, 32, 32]), "imsize"),
    (dict(cell="12Jy"), "cell"),
    (dict(cell=""), "cell"),
    (dict(interactive=True), "interactive"),
    (dict(usemask="auto-multithresh"), "usemask"),
    (dict(gridder="awproject"), "gridder"),
    (dict(savemodel="column"), "savemodel"),
    (dict(startmodel="/no/such.im"), "startmodel"),
    (dict(nchan=0), "nchan"),
    (dict(weighting="briggsbwtaper", perchanweightdensity=False), "perchanweightdensity"),
    (dict(weighting="briggsbwtaper", npixels=3), "npixels"),
    (dict(chanchunk=0), "chanchunk"),
    (dict(nworkers=-2), "nworkers"),
    (dict(gather="zip"), "gather"),
    (dict(weighting="heavy"), "weighting"),
    (dict(imagename=""), "imagename"),
    # cannot be equal: CASA carries the n-sigma threshold between channels (refusals.check_grid)
    (dict(niter=10, nsigma=3.0, deconvolver="multiscale", scales=[0, 3]), "nsigma=3.0 with"),
    (dict(niter=10, nsigma=3.0, deconvolver="clark"), "Run serial tclean"),
    (dict(niter=10, nsigma=3.0, fullsummary=True), "fullsummary=True"),
    (dict(niter=10, nsigma=3.0, stokes="IQ", chanchunk=1), "chanchunk=1 with nsigma=3.0"),
])
def test_bad_input_is_rejected_by_name(ms_lsrk, tmp_path, kw, message):
    with pytest.raises(ParameterError, match=message):
        call(ms_lsrk, tmp_path, **kw)
    assert not os.path.exists(str(tmp_path / "out.pclean-work"))


def test_impossible_selection(ms_lsrk, tmp_path):
    with pytest.raises(ParameterError):
        call(ms_lsrk, tmp_path, spw="7")


def test_unknown_parameter_is_rejected(ms_lsrk, tmp_path):
    with pytest.raises(TypeError, match="nosuchparam"):
        call(ms_lsrk, tmp_path, nosuchparam=1)


def test_existing_products_are_not_overwritten(ms_lsrk, tmp_path):
    existing = tmp_path / "out.residual"
    existing.mkdir()
    (existing / "keep").write_text("user data")
    with pytest.raises(ParameterError, match="exist"):
        call(ms_lsrk, tmp_path)
    assert (existing / "keep").read_text() == "user data"


def test_signature_is_tcleans_plus_parallel_parameters():
    from casatasks import tclean

    ours = inspect.signature(pclean).parameters
    theirs = {n: p for n, p in inspect.signature(tclean.__call__).parameters.items()
              if n != "self"}
    for name, p in theirs.items():
        assert name in ours and ours[name].default == p.default, name
    assert list(ours)[: len(theirs)] == list(theirs)  # same order: positional calls work
    for p in schema.PARALLEL_PARAMS:
        assert p.name in ours


def test_tclean_schema_read_from_source_equals_casatasks_own():
    """casahelpers reads tclean's definition from casatasks' tclean.py without executing it;
    what it reads must be what the imported module holds."""
    import ast
    import sys
    import textwrap

    from casatasks import tclean

    from pclean.casa import helpers as casahelpers

    module = sys.modules["casatasks.tclean"]
    source = textwrap.dedent(inspect.getsource(module._tclean.__call__))
    node = next(n for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "schema")
    theirs = eval(compile(ast.Expression(node.value), "tclean", "eval"), vars(module))
    light = casahelpers.tclean_definition()
    assert light.schema == theirs
    assert light.params == tuple((n, p.default) for n, p in
                                 inspect.signature(tclean.__call__).parameters.items()
                                 if n != "self")


COORDINATOR_SCRIPT = """
import sys
from pclean import params
from pclean.casa.helpers import imager_helpers
from pclean.params import imager, schema

p = params.normalize(schema.bind((), dict(vis=sys.argv[1], imagename=sys.argv[2],
                                          specmode="cube", imsize=32, cell="12arcsec",
                                          weighting="briggsbwtaper")))
plan = params.make_plan(p)
ip_type = type(imager.imager_parameters(p))
helpers = imager_helpers()
assert "chan" in helpers.SummaryMinor.getRowDescriptionsOldOrder(False)
assert "threshold" in helpers.PySynthesisImager.getStopDescription(None, 2)
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "casatasks")
assert not loaded, loaded
# the user's own casatasks afterwards is the real, whole package, and works
from casatasks import tclean
import casatasks.private.imagerhelpers.input_parameters as real
assert real.ImagerParameters is not ip_type
tclean(vis=sys.argv[1], imagename=sys.argv[2] + "-serial", specmode="cube", imsize=32,
       cell="12arcsec", nchan=2, niter=0)
from pclean import casa
ia = casa.tools().image()
ia.open(sys.argv[2] + "-serial.psf")
peak = float(ia.getchunk().max())
ia.close()
assert abs(peak - 1) < 1e-6, peak
# and pclean plans again after the user's casatasks import (its helpers, its log)
again = params.make_plan(dict(p, imagename=sys.argv[2] + "-again"))
assert again.grid.nchan == plan.grid.nchan
print("ok", plan.grid.nchan)
"""


def test_coordinator_plans_without_importing_casatasks(ms_lsrk, tmp_path):
    """Planning (validation, ImagerParameters, fracBW) runs without ``import casatasks`` (1.2-1.6
    s of the coordinator's start-up), and leaves nothing behind that would spoil a user's own
    ``import casatasks`` afterwards."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", COORDINATOR_SCRIPT, ms_lsrk,
                          str(tmp_path / "plan")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1].startswith("ok ")


def test_command_line_values_take_the_schemas_types(ms_lsrk, tmp_path):
    """``--spw 0`` is tclean's string '0' (it was read as the number 0 and rejected), numbers
    and lists where tclean takes them, pclean's own by their declared types."""
    from pclean import params
    from pclean.cli import commands

    assert schema.from_text("spw", "0") == "0"
    assert schema.from_text("field", "1") == "1"
    assert schema.from_text("spw", "0,1") == "0,1"  # tclean's selection syntax, not a list
    assert schema.from_text("spw", "['0', '1']") == ["0", "1"]  # one selection per MS
    assert schema.from_text("scan", "1") == "1"
    assert schema.from_text("imsize", "96") == 96
    assert schema.from_text("imsize", "[96,80]") == [96, 80]
    assert schema.from_text("cell", "8arcsec") == "8arcsec"
    assert schema.from_text("niter", "100") == 100
    assert schema.from_text("robust", "-0.5") == -0.5
    assert schema.from_text("interactive", "false") is False
    assert schema.from_text("restfreq", "['1.4GHz']") == ["1.4GHz"]
    assert schema.from_text("nworkers", "2") == 2
    assert schema.from_text("chanchunk", "[3,5]") == [3, 5]
    assert schema.from_text("workdir", "none") is None
    assert schema.from_text("keep_chunks", "true") is True
    assert schema.from_text("cluster_options", "{'queue': 'q'}") == {"queue": "q"}
    ns = commands.build_parser().parse_args(["run", "--vis", ms_lsrk, "--spw", "0",
                                         "--imagename", str(tmp_path / "cli"),
                                         "--specmode", "cube", "--imsize", "32",
                                         "--cell", "12arcsec", "--nchan", "2"])
    from pclean.cli import args

    p = params.normalize(schema.bind((), args.params_from_namespace(ns)))
    assert p["spw"] == "0" and p["imsize"] == 32 and p["nchan"] == 2


@pytest.mark.parametrize("kw, message", [
    (dict(cluster="slurm"), "nworkers: required with cluster='slurm'"),
    (dict(cluster_options={"no_such_option": 1}), r"cluster_options: \['no_such_option'\]"),
    (dict(cluster="slurm", nworkers=2, cluster_options={"qeueu": "x"}),
     "not keyword arguments of dask_jobqueue.SLURMCluster"),
    (dict(keep_chunks="yes"), "keep_chunks must be of type bool"),
    (dict(chanchunk=[2, 0]), "chanchunk a list of chunk sizes must hold positive integers"),
])
def test_pcleans_own_parameters_follow_their_schema_rules(ms_lsrk, tmp_path, kw, message):
    kw = dict(dict(cluster=None), **kw)
    with pytest.raises(ParameterError, match=message):
        call(ms_lsrk, tmp_path, **kw)


def test_existing_fits_exports_are_refused_up_front(ms_lsrk, tmp_path):
    (tmp_path / "out.psf.fits").write_text("user data")
    with pytest.raises(ParameterError, match=r"out\.psf\.fits"):
        call(ms_lsrk, tmp_path, fitsout=True)
    assert (tmp_path / "out.psf.fits").read_text() == "user data"
    assert not os.path.exists(str(tmp_path / "out.pclean-work"))


def test_the_minor_cycle_rows_the_unit_tests_use_are_casas():
    from fakes import ROWS, ROWS_FULL

    from pclean.run import summary

    assert summary.summary_rows(False) == ROWS
    assert summary.summary_rows(True) == ROWS_FULL
