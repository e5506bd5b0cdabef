"""The ``compare`` and ``fits`` subcommands (registered by ``pclean.cli.commands``).

    pclean compare TEST_PREFIX REF_PREFIX [--tolerance 1e-5] [--report PREFIX] [--products a,b]
    pclean compare --run [--config FILE] [--<tclean/pclean parameter> VALUE ...]
                   [--ref-prefix PREFIX] [--tolerance 1e-5] [--report PREFIX]
    pclean fits PREFIX|IMAGE [--outdir DIR] [--products a,b] [--overwrite]

compare exits 0 when the sets agree within the tolerance, 1 when they do not, 2 on bad input;
it prints the table and writes PREFIX.json, PREFIX.csv and PREFIX.png (default PREFIX:
``<test prefix>.compare``).
"""
from __future__ import annotations

import argparse
import os
import sys

BAD_INPUT = 2


def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    from pclean.cli import args
    from pclean.compare import DEFAULT_TOLERANCE

    p = subparsers.add_parser(
        "compare", help="compare two image sets channel by channel (or run tclean and pclean "
        "with the same parameters and compare them)",
        description="Compare two image sets (TEST_PREFIX REF_PREFIX), or with --run image with "
        "serial tclean into <imagename>.tclean and with pclean into <imagename>, and compare. "
        "Exit status: 0 pass, 1 fail, 2 bad input.")
    p.add_argument("prefixes", nargs="*", metavar="PREFIX",
                   help="TEST_PREFIX REF_PREFIX (omit with --run)")
    p.add_argument("--run", action="store_true",
                   help="run tclean and pclean with the imaging parameters given, then compare")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="pass if every |diff| <= tolerance x the product's reference peak "
                   "(default %(default)g)")
    p.add_argument("--report", metavar="PREFIX",
                   help="write PREFIX.json, PREFIX.csv, PREFIX.png (default <test>.compare)")
    p.add_argument("--products", help="comma-separated products (default: all present)")
    p.add_argument("--ref-prefix", dest="ref_prefix", metavar="PREFIX",
                   help="with --run: tclean's output prefix (default <imagename>.tclean)")
    args.add_param_arguments(p)  # --config and --<parameter> VALUE, as for `pclean run`
    p.set_defaults(func=_cmd_compare)
    return p


def add_fits_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fits", help="export an image set (or one image) to FITS, as exportfits does",
        description="Export <PREFIX>.<product> images (or the one image IMAGE) to FITS with "
        "per-plane restoring beams in a BEAMS table. Exit status 2 on bad input.")
    p.add_argument("target", metavar="PREFIX|IMAGE")
    p.add_argument("--outdir", help="directory for the FITS files (default: beside the images)")
    p.add_argument("--products", help="comma-separated products (default: all present)")
    p.add_argument("--overwrite", action="store_true", help="replace existing FITS files")
    p.set_defaults(func=_cmd_fits)
    return p


def _products(text: str | None):
    if not text:
        return None
    return [s.strip().lstrip(".") for s in text.split(",") if s.strip()]


def _error(message) -> int:
    print(f"pclean: error: {message}", file=sys.stderr)
    return BAD_INPUT


def _cmd_compare(ns) -> int:
    from pclean import api, compare
    from pclean.cli import args

    params_given = args.given(ns)
    try:
        if ns.run:
            if ns.prefixes:
                return _error("compare --run takes no prefixes (imagename names the pclean "
                              "output, --ref-prefix tclean's)")
            if ns.products:
                return _error("--products applies to comparing existing sets only")
            params = args.params_from_namespace(ns)
            if not params.get("imagename"):
                return _error("compare --run: --imagename is required")
            report = api.run_and_compare(params, ref_prefix=ns.ref_prefix,
                                             tolerance=ns.tolerance)
            test_prefix = str(params["imagename"])
        else:
            if len(ns.prefixes) != 2:
                return _error("compare needs TEST_PREFIX REF_PREFIX (or --run with imaging "
                              "parameters)")
            if params_given or getattr(ns, "config", None) or ns.ref_prefix:
                return _error("imaging parameters, --config and --ref-prefix need --run")
            test_prefix, ref_prefix = ns.prefixes
            report = compare.compare_prefixes(test_prefix, ref_prefix, ns.tolerance,
                                              _products(ns.products))
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as exc:
        return _error(exc)
    print(report.table())
    written = report.save(ns.report or test_prefix.rstrip("/") + ".compare")
    print("report: " + ", ".join(written))
    return 0 if report.passed else 1


def _cmd_fits(ns) -> int:
    from pclean.products import PRODUCTS
    from pclean.view import fitsio

    target = ns.target.rstrip("/")
    try:
        single = os.path.isdir(target) and not any(os.path.isdir(f"{target}.{p}")
                                                   for p in PRODUCTS)
        if single:
            if ns.products:
                return _error("--products applies to a prefix, not to one image")
            out = target + ".fits"
            if ns.outdir:
                os.makedirs(ns.outdir, exist_ok=True)
                out = os.path.join(ns.outdir, os.path.basename(out))
            written = [fitsio.export(target, out, overwrite=ns.overwrite)]
        else:
            written = fitsio.export_all(target, ns.outdir, _products(ns.products),
                                        overwrite=ns.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        return _error(exc)
    for path in written:
        print(path)
    return 0
