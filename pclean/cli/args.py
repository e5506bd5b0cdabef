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


def add_param_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="JSON, YAML or TOML file of parameters")
    group = parser.add_argument_group("imaging parameters (tclean's names and defaults)")
    for p in schema.all_params():
        group.add_argument(f"--{p.name}", dest=p.name, default=argparse.SUPPRESS, metavar="VALUE",
                           help=(p.doc or f"tclean's {p.name} (default {p.default!r})"))


def given(ns: argparse.Namespace) -> list[str]:
    """The parameters given on the command line."""
    return [p.name for p in schema.all_params() if hasattr(ns, p.name)]


def params_from_namespace(ns: argparse.Namespace) -> dict:
    values = load_config(ns.config) if getattr(ns, "config", None) else {}
    for name in given(ns):
        values[name] = schema.from_text(name, getattr(ns, name))
    return values
