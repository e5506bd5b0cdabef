"""Imaging parameters on the command line and in config files, from the one schema.

``--<name> VALUE`` for every tclean parameter and pclean's own, the value read as the type the
schema gives the parameter (``--spw 0`` is the string '0', ``--imsize 96`` the number, ``--imsize
[96,96]`` a list); a config file (JSON, YAML or TOML with the same names) gives values as typed
there. The command line wins over the file."""
from __future__ import annotations

import argparse
import json
import os

from pclean.params import schema


def load_config(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} not found")
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".toml"):
        import tomllib

        data = tomllib.loads(raw.decode())
    elif path.endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(raw)
    else:
        data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"config file {path}: expected a mapping of parameter names to values")
    known = set(schema.defaults())
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"config file {path}: unknown parameters {unknown}")
    return data


PARSING = """Every tclean parameter is --<name> VALUE with tclean's name and default, and
pclean's own follow. VALUE is read as the parameter's type in tclean's schema: a data selection
stays a string (--spw 0, --field 0, --spw 0,1, --scan 1), numbers are numbers (--imsize 96,
--niter 100), lists are written [a,b] (--imsize [96,96], --scales [0,3,10]), quantities are
strings (--cell 1arcsec, --threshold 0.1mJy), booleans true/false. --config FILE gives values
as typed in a JSON, YAML or TOML file; the command line wins over the file, and both over
pclean's Dask-config defaults (pclean config)."""


def add_param_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="JSON, YAML or TOML file of parameters")
    for title, params in schema.grouped():
        group = parser.add_argument_group(title)
        for p in params:
            doc = p.doc or p.name
            group.add_argument(f"--{p.name}", dest=p.name, default=argparse.SUPPRESS,
                               metavar="VALUE",
                               help=f"{doc} (default {p.default!r})".replace("%", "%%"))


def given(ns: argparse.Namespace) -> list[str]:
    """The parameters given on the command line."""
    return [p.name for p in schema.all_params() if hasattr(ns, p.name)]


def params_from_namespace(ns: argparse.Namespace) -> dict:
    values = load_config(ns.config) if getattr(ns, "config", None) else {}
    for name in given(ns):
        values[name] = schema.from_text(name, getattr(ns, name))
    return values
