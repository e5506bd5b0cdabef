"""Command line: ``pclean run``, ``pclean demo``, ``pclean compare``, ``pclean fits``.

Imaging options are generated from the one parameter schema (``--<tclean name> VALUE`` for every
tclean parameter, plus pclean's own), and may also come from a config file (JSON, YAML or TOML
with the same names); the command line wins over the file.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys

from pclean import schema


def parse_value(text: str):
    """'96' -> 96, '[96,96]' -> [96, 96], 'true' -> True, '10arcsec' -> '10arcsec'."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


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


def params_from_namespace(ns: argparse.Namespace) -> dict:
    values = load_config(ns.config) if getattr(ns, "config", None) else {}
    for p in schema.all_params():
        if hasattr(ns, p.name):
            values[p.name] = parse_value(getattr(ns, p.name))
    return values


def _cmd_run(ns) -> int:
    from pclean import pclean

    result = pclean(**params_from_namespace(ns))
    info = result.get("pclean", {})
    print(json.dumps({k: result[k] for k in ("iterdone", "nmajordone", "stopDescription")
                      if k in result} | {"pclean": info}, indent=2, default=str))
    return 0


def _cmd_demo(ns) -> int:
    from pclean import demo

    return demo.main(workdir=ns.workdir, nchan=ns.nchan, imsize=ns.imsize, nworkers=ns.nworkers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pclean", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="image a cube (tclean's parameters)")
    add_param_arguments(run)
    run.set_defaults(func=_cmd_run)
    demo = sub.add_parser("demo", help="simulate a cube, image it with pclean and tclean, compare")
    demo.add_argument("--workdir", default="pclean-demo")
    demo.add_argument("--nchan", type=int, default=64)
    demo.add_argument("--imsize", type=int, default=128)
    demo.add_argument("--nworkers", type=int, default=None)
    demo.set_defaults(func=_cmd_demo)
    from pclean import compare_cli

    compare_cli.add_compare_parser(sub)
    compare_cli.add_fits_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return ns.func(ns)
    except (ValueError, FileNotFoundError, FileExistsError, TypeError) as exc:
        print(f"pclean: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
