"""pclean's defaults the Dask way: a packaged YAML (``pclean/pclean.yaml``) read through
``dask.config``, overridden by the user's Dask configuration (``~/.config/dask/*.yaml``, the
``DASK_CONFIG`` directory) and ``DASK_PCLEAN__...`` environment variables; parameters given in
the call win over all of them.
"""
from __future__ import annotations

import os

import dask.config
import yaml

PACKAGED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "pclean.yaml")
# parameter name -> its dask.config key
KEYS = {"cluster": "pclean.cluster", "nworkers": "pclean.nworkers",
        "worker_memory": "pclean.worker-memory", "workdir": "pclean.workdir",
        "progress": "pclean.progress", "cluster_timeout": "pclean.cluster-timeout",
        "dashboard": "pclean.dashboard"}
SLURM_KEYS = {"queue": "pclean.slurm.queue", "account": "pclean.slurm.account",
              "walltime": "pclean.slurm.walltime"}


def _packaged() -> dict:
    with open(PACKAGED) as f:
        return yaml.safe_load(f)


dask.config.update_defaults(_packaged())


def apply(p: dict, explicit: set[str]) -> dict:
    """``p`` with every configurable parameter not in ``explicit`` taken from dask.config."""
    out = dict(p)
    for name, key in KEYS.items():
        if name not in explicit:
            value = dask.config.get(key, None)
            if value is not None and name == "workdir":
                # a directory for every run's work directory: one path for all runs would
                # make the second refuse the first's
                name_ = os.path.basename(os.path.abspath(str(out["imagename"])))
                value = os.path.join(str(value), f"{name_}.pclean-work")
            if value is not None and not (name == "dashboard" and value is False):
                out[name] = value
    if out.get("cluster") == "slurm":
        options = dict(out.get("cluster_options") or {})
        for option, key in SLURM_KEYS.items():
            value = dask.config.get(key, None)
            if value is not None and option not in options:
                options[option] = value
        out["cluster_options"] = options or out.get("cluster_options")
    return out


def _env_name(key: str) -> str:
    return "DASK_" + "__".join(part.upper().replace("-", "_") for part in key.split("."))


def _lookup(tree: dict, key: str):
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict):
            return None
        match = [k for k in node if str(k).replace("_", "-") == part.replace("_", "-")]
        if not match:
            return None
        node = node[match[0]]
    return node


def sources() -> list[tuple[str, object, str]]:
    """``(dask.config key, value in effect, where it came from)`` for every pclean key:
    an environment variable, the last Dask YAML file that sets it, or pclean's packaged
    defaults."""
    files = []
    for directory in dask.config.paths:
        if os.path.isdir(directory):
            for name in sorted(os.listdir(directory)):
                if name.endswith((".yaml", ".yml")):
                    path = os.path.join(directory, name)
                    try:
                        with open(path) as f:
                            files.append((path, yaml.safe_load(f) or {}))
                    except (OSError, yaml.YAMLError):
                        continue
    rows = []
    for key in list(KEYS.values()) + list(SLURM_KEYS.values()):
        where = f"pclean's defaults ({PACKAGED})"
        for path, tree in files:
            if _lookup(tree, key) is not None:
                where = path
        if _env_name(key) in os.environ:
            where = f"environment ({_env_name(key)})"
        rows.append((key, dask.config.get(key, None), where))
    return rows
