"""What the coordinator takes from casatasks, without paying for ``import casatasks``.

``import casatasks`` takes 1.2-1.6 s on these machines: its ``__init__`` imports all ~130 tasks,
and through them scipy, matplotlib and the flagging and single-dish code. A pclean run needs
none of that, only

* tclean's parameter definition (names, defaults, and the cerberus type schema xml-casa
  generated from tclean.xml), read here from casatasks' own ``tclean.py`` source without
  executing it; the validator and error formatter it uses are casatools', and
* four pure-Python imager helpers: ``ImagerParameters``, ``PySynthesisImager`` (for its stop
  descriptions), ``SummaryMinor`` and ``ImagingDict``.

CASA quirk worked around: the helpers live inside the casatasks package, and every one imports
``casalog`` from the package top, so importing them runs the whole ``casatasks/__init__``. We
import them under an unexecuted shell of the package that carries only ``casalog`` (the global
CASA log sink), then take every ``casatasks`` module out of ``sys.modules`` again: a later
``import casatasks`` (the user's, or the serial fallback's) loads the real package from scratch,
and nothing we loaded is mistaken for it. Where casatasks is already imported, or a future
casatasks needs more of its package than ``casalog``, the helpers are imported the ordinary way.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from pclean.casa import env

_HELPERS = {
    "ImagerParameters": "casatasks.private.imagerhelpers.input_parameters",
    "PySynthesisImager": "casatasks.private.imagerhelpers.imager_base",
    "SummaryMinor": "casatasks.private.imagerhelpers.summary_minor",
    "ImagingDict": "casatasks.private.imagerhelpers.imager_return_dict",
}


@dataclass(frozen=True)
class TaskDefinition:
    params: tuple[tuple[str, Any], ...]  # (name, default) in tclean's order
    schema: dict  # tclean's cerberus schema: types, allowed values, coercions


def _package_dir() -> str:
    spec = importlib.util.find_spec("casatasks")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("casatasks is not installed")
    return list(spec.submodule_search_locations)[0]


@lru_cache(maxsize=1)
def tclean_definition() -> TaskDefinition:
    """tclean's parameters and type schema, from casatasks' generated ``tclean.py``.

    The file's ``_tclean.__call__`` carries the defaults in its signature and the schema as the
    literal assigned to ``schema``; both are expressions over ``_coerce`` (casatools'
    ``coercetype.coerce``), ``int``/``float`` and numpy, evaluated here as the module would."""
    env.configure()
    from casatools.coercetype import coerce

    path = f"{_package_dir()}/tclean.py"
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    call = next(node for cls in tree.body if isinstance(cls, ast.ClassDef) and cls.name == "_tclean"
                for node in cls.body
                if isinstance(node, ast.FunctionDef) and node.name == "__call__")
    import numpy

    namespace = {"_coerce": coerce, "numpy": numpy}

    def evaluate(node):
        return eval(compile(ast.Expression(node), path, "eval"), dict(namespace))

    names = [a.arg for a in call.args.args][1:]  # without self
    defaults = [evaluate(d) for d in call.args.defaults]
    if len(defaults) != len(names):
        raise RuntimeError(f"{path}: a tclean parameter without a default")
    schema = next((evaluate(node.value) for node in ast.walk(call)
                   if isinstance(node, ast.Assign) and len(node.targets) == 1
                   and getattr(node.targets[0], "id", None) == "schema"), None)
    if schema is None:
        raise RuntimeError(f"could not read tclean's parameter schema from {path}")
    return TaskDefinition(params=tuple(zip(names, defaults)), schema=schema)


@lru_cache(maxsize=1)
def tclean_descriptions() -> dict[str, str]:
    """tclean's one-line description of each parameter (``<shortdescription>`` in casatasks'
    ``__xml__/tclean.xml``, the task's own documentation); {} where the file is missing."""
    import os
    import xml.etree.ElementTree as ElementTree

    path = os.path.join(_package_dir(), "__xml__", "tclean.xml")
    if not os.path.exists(path):
        return {}
    out = {}
    for param in ElementTree.parse(path).getroot().iter():
        if param.tag.rsplit("}", 1)[-1] != "param" or "name" not in param.attrib:
            continue
        short = next((c.text for c in param if c.tag.rsplit("}", 1)[-1] == "shortdescription"),
                     None)
        if short:
            out[param.attrib["name"]] = " ".join(short.split())
    return out


def validate_tclean(doc: dict) -> dict:
    """``doc`` validated and coerced as casatasks' tclean wrapper does it; ValueError if not."""
    env.configure()
    from casatools.errors import create_error_string
    from casatools.typecheck import CasaValidator

    validator = CasaValidator()
    if not validator.validate(doc, tclean_definition().schema):
        raise ValueError("invalid tclean parameters: " + create_error_string(validator.errors))
    return dict(validator.document)


def imager_helpers() -> SimpleNamespace:
    """casatasks' ImagerParameters, PySynthesisImager, SummaryMinor and ImagingDict.

    CASA quirk: the helpers post to the ``casalog`` they imported, and once the real casatasks
    is imported (by the user, between two pclean calls) a sink made before it segfaults on
    post (measured: SIGSEGV in logsink.post from ImagerParameters.checkParameters). So the
    helpers imported under the shell serve only while casatasks is not imported; after that,
    casatasks' own."""
    return _helpers("casatasks" in sys.modules)


@lru_cache(maxsize=2)
def _helpers(casatasks_imported: bool) -> SimpleNamespace:
    env.configure()
    if not casatasks_imported:
        try:
            return _import_under_shell()
        except (ImportError, AttributeError) as exc:
            env.log(f"pclean: importing casatasks in full ({exc})", "DEBUG1")
    return SimpleNamespace(**{name: getattr(importlib.import_module(module), name)
                              for name, module in _HELPERS.items()})


def _import_under_shell() -> SimpleNamespace:
    shell = importlib.util.module_from_spec(importlib.util.find_spec("casatasks"))
    shell.casalog = env.casalog()
    sys.modules["casatasks"] = shell
    try:
        return SimpleNamespace(**{name: getattr(importlib.import_module(module), name)
                                  for name, module in _HELPERS.items()})
    finally:
        for name in [n for n in sys.modules if n == "casatasks" or n.startswith("casatasks.")]:
            del sys.modules[name]


__all__ = ["TaskDefinition", "tclean_definition", "validate_tclean", "imager_helpers"]
