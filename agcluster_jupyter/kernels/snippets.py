"""The fixed, reviewed code the kernel tools run in the user's kernel to look at it.

``inspect_variable`` and ``list_variables`` never run code from the agent: they run the
sources below, and the agent's input reaches them only as data.  A variable name must be
a Python identifier (checked here, before anything is sent); it is then written into the
request as a string literal.  The code runs as a *user expression* of a silent execute
request (``silent=True``, ``store_history=False``): no execution count, no output in the
notebook, nothing in the user's history, and nothing left in the user's namespace (it
runs in a namespace of its own, reading the user's).  It imports nothing the kernel has
not imported (pandas and numpy are looked up in ``sys.modules``), and every repr is
bounded by ``reprlib`` before it is made, so a huge object costs little.

The result comes back as the text/plain repr of a JSON string: :func:`parse_result`.
"""

from __future__ import annotations

import ast
import json
import keyword
from typing import Any

__all__ = [
    "MAX_REPR",
    "MAX_ROWS",
    "MAX_VARIABLES",
    "SnippetError",
    "inspect_expression",
    "list_expression",
    "parse_result",
    "valid_name",
]

#: characters of a repr, or a DataFrame's rows as text, the agent is given
MAX_REPR = 2000
#: rows of a DataFrame or Series shown
MAX_ROWS = 5
#: variables ``list_variables`` names
MAX_VARIABLES = 200


class SnippetError(ValueError):
    """The agent's input cannot be turned into a snippet call (its text says why)."""


# What runs in the kernel.  ``ns`` is the user's namespace; the function's result is the
# JSON text of the summary.  Keep it dependency-free and bounded: it is run by every
# inspect, in whatever state the user's kernel is in.
_INSPECT = r"""
def _summary(ns, name, max_repr, max_rows):
    import json, reprlib, sys
    if name not in ns:
        return json.dumps({"error": "not found: no variable %r in the kernel" % name})
    value = ns[name]
    kind = type(value)
    out = {"name": name, "type": "%s.%s" % (kind.__module__, kind.__qualname__)}
    short = reprlib.Repr()
    short.maxstring = short.maxother = max_repr
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 20
    short.maxlevel = 3
    def cap(text):
        out["truncated"] = out.get("truncated", False) or len(text) > max_repr
        return text[:max_repr]
    try:
        pd = sys.modules.get("pandas")
        np = sys.modules.get("numpy")
        if pd is not None and isinstance(value, pd.DataFrame):
            out["shape"] = list(value.shape)
            out["dtypes"] = {str(k): str(v) for k, v in list(value.dtypes.items())[:50]}
            out["head"] = cap(value.head(max_rows).to_string(max_cols=20, max_colwidth=40))
        elif pd is not None and isinstance(value, pd.Series):
            out["shape"] = list(value.shape)
            out["dtype"] = str(value.dtype)
            out["head"] = cap(value.head(max_rows).to_string(max_rows=max_rows))
        elif np is not None and isinstance(value, np.ndarray):
            out["shape"] = list(value.shape)
            out["dtype"] = str(value.dtype)
            with np.printoptions(threshold=50, edgeitems=3, linewidth=100):
                out["repr"] = cap(repr(value))
        else:
            try:
                out["len"] = len(value)
            except Exception:
                pass
            out["repr"] = cap(short.repr(value))
            # reprlib shortened it (20 items, or max_repr characters of a string)
            limit = max_repr if isinstance(value, (str, bytes)) else 20
            if out.get("len", 0) > limit:
                out["truncated"] = True
    except Exception as exc:
        out["error"] = "could not summarise it: %s" % type(exc).__name__
    return json.dumps(out, default=str)
"""

_LIST = r"""
def _summary(ns, limit):
    import json, sys, types
    hidden = {"In", "Out", "exit", "quit", "get_ipython", "open"}
    pd = sys.modules.get("pandas")
    np = sys.modules.get("numpy")
    names = sorted(
        n for n, v in ns.items()
        if not n.startswith("_") and n not in hidden
        and not isinstance(v, (types.ModuleType, types.FunctionType, type))
    )
    out = []
    for n in names[:limit]:
        v = ns[n]
        kind = type(v)
        row = {"name": n, "type": "%s.%s" % (kind.__module__, kind.__qualname__)}
        try:
            if (pd is not None and isinstance(v, (pd.DataFrame, pd.Series))) or (
                np is not None and isinstance(v, np.ndarray)
            ):
                row["shape"] = list(v.shape)
            elif isinstance(v, (list, tuple, dict, set, str, bytes)):
                row["len"] = len(v)
            row["bytes"] = sys.getsizeof(v)
        except Exception:
            pass
        out.append(row)
    return json.dumps({"variables": out, "total": len(names), "truncated": len(names) > limit})
"""


def valid_name(name: Any) -> str:
    """The variable name, if it is one (an identifier, not a keyword)."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise SnippetError(f"invalid: {name!r} is not a Python variable name")
    return name


def _call(source: str, args: str) -> str:
    # one expression: the source run in a fresh namespace, its _summary called with the
    # user's namespace (only IPython kernels have get_ipython)
    return (
        f"(lambda __src: (lambda __g: (exec(__src, __g), __g['_summary']"
        f"(get_ipython().user_ns, {args}))[1])({{}}))({source!r})"
    )


def inspect_expression(name: Any) -> str:
    """The user expression that summarises the variable ``name``."""
    checked = valid_name(name)
    return _call(_INSPECT, f"{checked!r}, {MAX_REPR}, {MAX_ROWS}")


def list_expression() -> str:
    """The user expression that lists the user's variables."""
    return _call(_LIST, str(MAX_VARIABLES))


def parse_result(reply_content: dict[str, Any], key: str) -> dict[str, Any]:
    """The summary out of an execute reply's ``user_expressions[key]``."""
    expression = (reply_content.get("user_expressions") or {}).get(key) or {}
    if expression.get("status") != "ok":
        name = expression.get("ename") or "an error"
        raise SnippetError(f"the kernel could not run the inspection ({name})")
    text = (expression.get("data") or {}).get("text/plain", "")
    try:
        data = json.loads(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError) as exc:
        raise SnippetError("the kernel's answer could not be read") from exc
    if not isinstance(data, dict):
        raise SnippetError("the kernel's answer could not be read")
    return data
