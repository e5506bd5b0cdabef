"""pclean's defaults through dask.config: packaged YAML < the user's Dask YAML < DASK_PCLEAN__
environment variables < what the call gives."""
from __future__ import annotations

import os
import subprocess
import sys

import dask.config
import pytest

from pclean.params import config

BASE = {"imagename": "/data/cube", "nworkers": None, "cluster": None, "worker_memory": None,
        "workdir": None, "progress": None, "cluster_timeout": None, "cluster_options": None,
        "dashboard": False}


@pytest.fixture
def user_config(tmp_path, monkeypatch):
    """A user's Dask configuration directory (``DASK_CONFIG``) holding ``pclean.yaml``."""
    def write(text: str):
        (tmp_path / "pclean.yaml").write_text(text)
        # dask.config reads DASK_CONFIG once, at import: the directory is added as it would be
        paths = list(dask.config.paths) + [str(tmp_path)]
        monkeypatch.setattr(dask.config, "paths", paths)
        dask.config.refresh(paths=paths)
        return str(tmp_path / "pclean.yaml")

    yield write
    monkeypatch.undo()
    dask.config.refresh(paths=dask.config.paths)


def test_packaged_defaults_change_nothing():
    assert config.apply(BASE, set()) == BASE


def test_a_users_yaml_sets_defaults_and_the_environment_and_the_call_win(user_config,
                                                                         monkeypatch):
    path = user_config("pclean:\n  nworkers: 3\n  worker-memory: 2GiB\n  workdir: /scratch\n"
                       "  dashboard: true\n"
                       "  slurm:\n    queue: long\n    walltime: '04:00:00'\n")
    got = config.apply(BASE, set())
    assert got["nworkers"] == 3 and got["worker_memory"] == "2GiB"
    assert got["workdir"] == "/scratch/cube.pclean-work"  # a directory for every run's
    assert got["dashboard"] is True
    assert got["cluster_options"] is None  # SLURM defaults only for SLURM runs
    slurm = config.apply(dict(BASE, cluster="slurm", cluster_options={"walltime": "1:00:00"}),
                         {"cluster", "cluster_options"})
    assert slurm["cluster_options"] == {"walltime": "1:00:00", "queue": "long"}
    monkeypatch.setenv("DASK_PCLEAN__NWORKERS", "5")
    dask.config.refresh(paths=dask.config.paths)
    assert config.apply(BASE, set())["nworkers"] == 5
    assert config.apply(dict(BASE, nworkers=2), {"nworkers"})["nworkers"] == 2
    where = {key: source for key, _, source in config.sources()}
    assert where["pclean.nworkers"] == "environment (DASK_PCLEAN__NWORKERS)"
    assert where["pclean.worker-memory"] == path
    assert where["pclean.progress"].startswith("pclean's defaults")


def test_pclean_config_prints_the_values_and_their_sources(tmp_path):
    (tmp_path / "pclean.yaml").write_text("pclean:\n  cluster-timeout: 60\n")
    env = dict(os.environ, DASK_CONFIG=str(tmp_path), DASK_PCLEAN__PROGRESS="False")
    out = subprocess.run([sys.executable, "-m", "pclean.cli", "config"], env=env,
                         capture_output=True, text=True, check=True).stdout
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "60" in lines["pclean.cluster-timeout"]
    assert str(tmp_path / "pclean.yaml") in lines["pclean.cluster-timeout"]
    assert "false" in lines["pclean.progress"] and "DASK_PCLEAN__PROGRESS" in lines[
        "pclean.progress"]
