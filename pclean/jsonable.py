"""Plain JSON values from the records pclean writes (plan manifests, comparison reports)."""
from __future__ import annotations

import math

import numpy as np


def jsonable(obj):
    """``obj`` with numpy values made plain, NaN as null and infinities as "inf"/"-inf"
    (strict JSON has neither), dict keys as strings and anything else as its repr."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(obj, (str, type(None))):
        return obj
    return repr(obj)
