"""Command line: ``pclean run``, ``pclean demo``, ``pclean config``, ``pclean compare``,
``pclean fits``.

Imaging options are generated from the one parameter schema (``--<tclean name> VALUE`` for every
tclean parameter, plus pclean's own, read as the type the schema gives it), and may also come
from a config file (JSON, YAML or TOML with the same names); the command line wins over the
file (see ``args``).
"""
from __future__ import annotations

import argparse
import json
import sys

from pclean.cli import args


EXIT_CODES = """exit codes: 0 done; 1 the run failed (its error is printed; a run's work
directory with the chunks' CASA logs is kept); 2 bad input (a parameter, a file, a command
line), refused before any worker started; 130 Ctrl-C, 143 SIGTERM (scancel, a walltime). A
stopped or failed run continues from its last completed stretch when the same command is given
again."""


def _cmd_run(ns) -> int:
    from pclean.api import pclean

    result = pclean(**args.params_from_namespace(ns))
    info = result.get("pclean", {})
    print(json.dumps({k: result[k] for k in ("iterdone", "nmajordone", "stopDescription")
                      if k in result} | {"pclean": info}, indent=2, default=str))
    return 0


def _cmd_demo(ns) -> int:
    from pclean.cli import demo

    return demo.main(workdir=ns.workdir, nchan=ns.nchan, imsize=ns.imsize, nworkers=ns.nworkers)


def _cmd_config(ns) -> int:
    from pclean.params import config

    rows = config.sources()
    width = max(len(key) for key, _, _ in rows)
    for key, value, where in rows:
        print(f"{key:<{width}}  {json.dumps(value):<12}  {where}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pclean", description=__doc__, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="image a cube (tclean's parameters)",
                         description=args.PARSING, epilog=EXIT_CODES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_param_arguments(run)
    run.set_defaults(func=_cmd_run)
    demo = sub.add_parser("demo", help="simulate a cube, image it with pclean and tclean, compare")
    demo.add_argument("--workdir", default=None,
                      help="where to write (default: a new temporary directory)")
    demo.add_argument("--nchan", type=int, default=256)
    demo.add_argument("--imsize", type=int, default=256)
    demo.add_argument("--nworkers", type=int, default=None)
    demo.set_defaults(func=_cmd_demo)
    conf = sub.add_parser("config", help="pclean's defaults in effect (dask.config) and where "
                                         "each comes from")
    conf.set_defaults(func=_cmd_config)
    from pclean.cli import compare

    compare.add_compare_parser(sub)
    compare.add_fits_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return ns.func(ns)
    except (ValueError, FileNotFoundError, FileExistsError, TypeError) as exc:
        print(f"pclean: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        from pclean.api import Terminated

        print("pclean: interrupted (an imaging run continues when the same command is "
              "given again)", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:  # a failed run: the message, not a traceback
        print(f"pclean: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
