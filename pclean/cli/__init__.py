"""Stage 6: the command line (``pclean run``, ``demo``, ``compare``, ``fits``).

    commands the parser and the run/demo subcommands
    args     imaging parameters from the schema: typed ``--name VALUE`` and config files
    compare  the compare and fits subcommands
    demo     simulate, image with pclean and tclean, compare
"""


def main(argv=None) -> int:
    from pclean.cli.commands import main as _main

    return _main(argv)


__all__ = ["main"]
