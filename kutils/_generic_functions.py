"""Small helpers of Keras 2's ``generic_utils`` that custom layers and scripts imported."""

from __future__ import annotations

import binascii
import codecs
import inspect
import marshal
import types
from collections.abc import Callable
from typing import Any

__all__ = ["func_dump", "func_load", "has_arg", "to_list", "unpack_singleton"]


def has_arg(fn: Callable[..., Any], name: str, accept_all: bool = False) -> bool:
    """Whether ``fn`` accepts ``name`` as a keyword argument (Keras 2.3.1).

    Args:
        fn: a callable.
        name: the argument name.
        accept_all: count a ``**kwargs`` parameter as accepting ``name``.

    Returns:
        ``True`` if ``name`` is a positional-or-keyword or keyword-only parameter, or
        with ``accept_all``, if ``fn`` takes ``**kwargs``.
    """
    parameters = inspect.signature(fn).parameters
    parameter = parameters.get(name)
    if parameter is None:
        return accept_all and any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
        )
    return parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def to_list(x: Any, allow_tuple: bool = False) -> list[Any]:
    """``x`` if it is a list, ``list(x)`` for a tuple with ``allow_tuple``, else ``[x]``."""
    if isinstance(x, list):
        return x
    if allow_tuple and isinstance(x, tuple):
        return list(x)
    return [x]


def unpack_singleton(x: Any) -> Any:
    """``x[0]`` if ``x`` has exactly one element, else ``x``."""
    if len(x) == 1:
        return x[0]
    return x


def func_dump(func: Callable[..., Any]) -> tuple[str, Any, Any]:
    """Serialize a function to ``(code, defaults, closure)`` (Keras 2 format).

    The code is ``marshal`` output in base64: it loads only on the same Python version.
    """
    code = codecs.encode(marshal.dumps(func.__code__), "base64").decode("ascii")
    closure = func.__closure__
    cells = tuple(cell.cell_contents for cell in closure) if closure else None
    return code, func.__defaults__, cells


def func_load(
    code: Any, defaults: Any = None, closure: Any = None, globs: dict[str, Any] | None = None
) -> types.FunctionType:
    """Rebuild a function serialized by ``func_dump``.

    Security: this runs code from the serialized data; load only data you trust.
    """
    if isinstance(code, (tuple, list)):
        code, defaults, closure = code
        if isinstance(defaults, list):
            defaults = tuple(defaults)
    cells = tuple(types.CellType(value) for value in closure) if closure is not None else None
    try:
        raw = codecs.decode(code.encode("ascii"), "base64")
    except (UnicodeEncodeError, binascii.Error):
        raw = code.encode("raw_unicode_escape")
    function_code = marshal.loads(raw)
    return types.FunctionType(
        function_code,
        globs if globs is not None else globals(),
        name=function_code.co_name,
        argdefs=defaults,
        closure=cells,
    )
