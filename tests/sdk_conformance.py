"""Strict validation of request bodies against the official SDKs' request types.

The SDKs describe each request body as a ``TypedDict`` tree. :func:`assert_valid`
walks a body against such a type with extra keys forbidden (the SDKs' own
pydantic models would ignore them), so a test proves that modelprov sends
exactly the fields the provider's API defines today. The SDKs are a test extra
(``pip install -e ".[test,sdk]"``); without them the tests are skipped with a reason.
"""

import collections.abc
import importlib
import typing
from typing import Any, List, Tuple

import pytest

try:
    import typing_extensions as _te
except ImportError:  # pragma: no cover - every SDK depends on typing_extensions
    _te = None  # type: ignore[assignment]

__all__ = ["assert_valid", "load_type", "require_sdk"]

_SEQ_ORIGINS = (list, tuple, collections.abc.Iterable, collections.abc.Sequence, collections.abc.Collection)


def require_sdk(package: str) -> Any:
    """The SDK module ``package``, or skip the test saying how to install it."""
    return pytest.importorskip(package, reason=f"the {package} SDK is not installed (pip install -e '.[test,sdk]')")


def load_type(dotted: str) -> Any:
    """``"anthropic.types.message_create_params.MessageCreateParamsNonStreaming"`` -> the type."""
    module, _, name = dotted.rpartition(".")
    require_sdk(module.split(".")[0])
    return getattr(importlib.import_module(module), name)


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__annotations__") and hasattr(tp, "__total__")


def _strip(tp: Any) -> Tuple[Any, bool, bool]:
    """(inner type, marked Required, marked NotRequired), unwrapping Annotated/Required/NotRequired."""
    required = not_required = False
    while True:
        origin = typing.get_origin(tp)
        name = getattr(origin, "_name", None) or getattr(tp, "_name", None) or ""
        if origin is not None and (origin is getattr(typing, "Annotated", None) or name == "Annotated" or
                                   (_te is not None and origin is _te.Annotated)):
            tp = typing.get_args(tp)[0]
            continue
        rname = repr(origin) if origin is not None else ""
        if "Required" in rname or "NotRequired" in rname:
            if "NotRequired" in rname:
                not_required = True
            else:
                required = True
            tp = typing.get_args(tp)[0]
            continue
        if hasattr(tp, "__origin__") and repr(tp).startswith(("typing.Annotated", "typing_extensions.Annotated")):
            tp = tp.__origin__
            continue
        return tp, required, not_required


def _errors(value: Any, tp: Any, path: str) -> List[str]:
    tp, _, _ = _strip(tp)
    if tp is Any or tp is object:
        return []
    if tp is type(None) or tp is None:
        return [] if value is None else [f"{path}: expected null, got {value!r:.60}"]
    if _is_typeddict(tp):
        return _typeddict_errors(value, tp, path)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:
        best: List[str] = []
        for option in args:
            errs = _errors(value, option, path)
            if not errs:
                return []
            if not best or len(errs) < len(best):
                best = errs
        return best or [f"{path}: matches no member of {tp}"]
    if origin is typing.Literal or (_te is not None and origin is _te.Literal):
        return [] if value in args else [f"{path}: {value!r:.60} is not one of {args}"]
    if origin in (dict, collections.abc.Mapping) or tp in (dict, typing.Dict):
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        vtype = args[1] if len(args) == 2 else Any
        return [e for k, v in value.items() for e in _errors(v, vtype, f"{path}.{k}")]
    if origin in _SEQ_ORIGINS or (origin is not None and "SequenceNotStr" in repr(origin)) or "SequenceNotStr" in repr(tp):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        item = args[0] if args else Any
        return [e for i, v in enumerate(value) for e in _errors(v, item, f"{path}[{i}]")]
    if tp is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected a bool, got {value!r:.60}"]
    if tp is int:
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{path}: expected an int, got {value!r:.60}"]
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number, got {value!r:.60}"]
    if tp is str:
        return [] if isinstance(value, str) else [f"{path}: expected a string, got {value!r:.60}"]
    if isinstance(tp, type):
        return [] if isinstance(value, tp) else [f"{path}: expected {tp.__name__}, got {type(value).__name__}"]
    return []  # a construct this walker does not know: accepted (kept lenient only there)


def _typeddict_errors(value: Any, td: Any, path: str) -> List[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object ({td.__name__}), got {type(value).__name__}"]
    get_hints = _te.get_type_hints if _te is not None else typing.get_type_hints
    hints = get_hints(td, include_extras=True)
    errs = [f"{path}: unknown key {key!r} for {td.__name__}" for key in value if key not in hints]
    required_keys = set(getattr(td, "__required_keys__", ()))
    for key, ann in hints.items():
        _, required, not_required = _strip(ann)
        if key not in value:
            if (required or key in required_keys) and not not_required:
                errs.append(f"{path}: missing required key {key!r} of {td.__name__}")
            continue
        errs.extend(_errors(value[key], ann, f"{path}.{key}"))
    return errs


def assert_valid(type_path: str, body: Any) -> None:
    """Fail unless ``body`` matches the SDK type at ``type_path`` exactly (no unknown keys)."""
    errs = _errors(body, load_type(type_path), "body")
    assert not errs, "request body does not match %s:\n  %s" % (type_path, "\n  ".join(errs[:20]))
