"""The command line as a user drives it: real selections, lists, quantities and a config file,
typed from the schema; help grouped as tclean's sections with casatasks' descriptions; exit
codes 0, 1 and 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _pclean(*argv, cwd=None):
    return subprocess.run([sys.executable, "-m", "pclean.cli", *argv], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_run_help_groups_parameters_with_tcleans_own_descriptions():
    out = _pclean("run", "--help")
    assert out.returncode == 0
    text = out.stdout
    for title in ("data selection:", "image:", "spectral axis:", "weighting:",
                  "deconvolution:", "iteration control:", "parallel (pclean's own):"):
        assert f"\n{title}\n" in text, title
    assert "spw(s)/channels to select" in text  # casatasks' shortdescription
    assert "--spw 0" in text and "exit codes: 0 done; 1" in text


def test_a_cube_from_the_command_line_with_real_selections(ms_lsrk, tmp_path):
    config = tmp_path / "params.yaml"
    config.write_text("specmode: cube\nweighting: briggs\nrobust: 0.5\npblimit: 0.2\n"
                      "niter: 1000\n")
    out = _pclean("run", "--config", str(config), "--vis", ms_lsrk, "--imagename",
                  str(tmp_path / "cli"), "--spw", "0", "--field", "0", "--scan", "1",
                  "--imsize", "[48,48]", "--cell", "12arcsec", "--threshold", "0.05Jy",
                  "--niter", "30", "--nworkers", "2", "--chanchunk", "[4,8]",
                  "--restoringbeam", "common", "--progress", "false", cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    # the command line's niter won over the file's (tclean's niter bounds each channel)
    assert 0 < summary["iterdone"] <= 30 * 12
    assert [c["nchan"] for c in summary["pclean"]["chunks"]] == [4, 8]
    assert os.path.isdir(str(tmp_path / "cli.image"))


@pytest.mark.parametrize("argv, code, message", [
    (["--cell", "abc"], 2, "cell: 'abc' is not a positive angle"),
    (["--imsize", "[48,48,48]"], 2, "imsize"),
    (["--cluster", "tcp://127.0.0.1:9", "--cluster_timeout", "3"], 1, "pclean: failed:"),
])
def test_exit_codes_say_what_went_wrong(ms_lsrk, tmp_path, argv, code, message):
    out = _pclean("run", "--vis", ms_lsrk, "--imagename", str(tmp_path / "x"), "--specmode",
                  "cube", "--imsize", "32", "--cell", "12arcsec", *argv, cwd=str(tmp_path))
    assert out.returncode == code, out.stderr[-2000:]
    assert message in out.stderr
    assert "Traceback" not in out.stderr
