"""Dask's own tools: the dashboard served and its address printed; a performance report."""
from __future__ import annotations

import os
import re
import urllib.error
import urllib.request

import pytest

from conftest import IMAGING
from pclean import ParameterError, pclean
from pclean.run import cluster


def test_the_embedded_clusters_dashboard_is_served_where_it_says():
    with cluster.connect(None, nworkers=1, dashboard=True) as client:
        link = cluster.dashboard_link(client)
        assert link and link.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(link, timeout=30) as page:
            assert page.status == 200
    with cluster.connect(None, nworkers=1) as client:  # not asked for: no dashboard pages
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(client.dashboard_link, timeout=30)


def test_a_run_prints_the_dashboard_and_writes_a_performance_report(ms_lsrk, tmp_path, capfd):
    prefix = str(tmp_path / "dash")
    pclean(vis=ms_lsrk, imagename=prefix, nworkers=2, dashboard=True, performance_report=True,
           niter=20, **IMAGING)
    err = capfd.readouterr().err
    assert re.search(r"pclean: Dask dashboard at http://127\.0\.0\.1:\d+/status", err), err
    with open(prefix + ".dask-report.html") as f:
        assert "Dask Performance Report" in f.read()
    # a second run would overwrite the report: refused up front
    with pytest.raises(ParameterError, match="performance_report: .* exists"):
        pclean(vis=ms_lsrk, imagename=prefix, nworkers=2, performance_report=True, **IMAGING)
    assert os.path.exists(prefix + ".image")
