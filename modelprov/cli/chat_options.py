"""What ``modelprov chat`` takes beyond the prompt: ``-o`` chat options, ``-a`` image attachments, ``--schema``.

* ``-o KEY VALUE`` and ``-o KEY=VALUE`` (repeatable): any chat option
  ``Client.complete`` takes (:data:`CHAT_OPTIONS`); the value is parsed as
  JSON when it parses (``0.2``, ``42``, ``true``, ``["END"]``), else kept as
  a string (``high``). Provider-specific settings go through one option,
  ``-o options '{"num_ctx": 8192}'``, exactly as a batch line's ``options``.
* ``-a PATH_OR_URL``: an image file (type from its bytes, else its
  extension; anything else is refused) or an ``http(s)``/``data:`` URL.
* ``--schema``: a JSON schema inline, a file holding one, or the concise
  form ``'name, age int, bio: a short bio'``.

Standard library only; the library is imported inside the functions.
"""

import argparse
import json
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .common import did_you_mean

__all__ = [
    "CHAT_OPTIONS",
    "OptionAction",
    "attachment_part",
    "chat_options",
    "concise_schema",
    "load_schema",
    "parse_json_answer",
    "parse_value",
    "response_format_for",
]

#: The option names ``-o`` accepts: the chat options of ``Client.complete``, ``timeout``, and ``options``
#: (a JSON object of provider-specific settings passed through as they are).
CHAT_OPTIONS = (
    "temperature", "top_p", "max_tokens", "stop", "seed", "reasoning", "cache", "tools", "tool_choice",
    "response_format", "timeout", "system", "options",
)  # fmt: skip

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def _usage_error(message: str, hint: Optional[str] = None) -> Exception:
    from ..exceptions import ValidationError

    return ValidationError(message, hint=hint)


# ------------------------------------------------------------------------ -o
class OptionAction(argparse.Action):
    """``-o KEY VALUE`` or ``-o KEY=VALUE``: collects ``(key, value)`` pairs in ``dest``.

    It takes one or more words so both forms work; words left over after the
    pairs (a prompt written after ``-o k=v``) go to ``prompt_extra``.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: Optional[str] = None) -> None:
        words: List[str] = list(values if isinstance(values, list) else [values])
        pairs: List[Tuple[str, str]] = list(getattr(namespace, self.dest, None) or [])
        extra: List[str] = list(getattr(namespace, "prompt_extra", None) or [])
        first = True
        while words:
            word = words.pop(0)
            key, eq, value = word.partition("=")
            if eq and _KEY.match(key):
                pairs.append((key, value))
            elif first and words:
                pairs.append((word, words.pop(0)))
            elif first:
                parser.error(f"{option_string} {word}: give a value too (-o KEY VALUE or -o KEY=VALUE)")
            else:
                extra.append(word)
                extra.extend(words)
                break
            first = False
        setattr(namespace, self.dest, pairs)
        namespace.prompt_extra = extra


def parse_value(text: str) -> Any:
    """``text`` as JSON when it parses (numbers, booleans, null, lists, objects), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def chat_options(pairs: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    """The keyword arguments for ``Client.complete`` from ``-o`` pairs; an unknown name is refused with "did you mean"."""
    out: Dict[str, Any] = {}
    for key, raw in pairs:
        name = key.strip().replace("-", "_")
        if name not in CHAT_OPTIONS:
            raise _usage_error(
                f"unknown chat option {key!r}",
                hint=did_you_mean(name, CHAT_OPTIONS)
                or f"-o takes {', '.join(CHAT_OPTIONS)}; provider-specific settings go in -o options '{{\"{key}\": ...}}'",
            )
        value = parse_value(raw)
        if name == "options":
            if not isinstance(value, dict):
                raise _usage_error("-o options takes a JSON object of provider-specific settings", hint="""e.g. -o options '{"num_ctx": 8192}'""")
            clash = sorted(set(value) & (set(CHAT_OPTIONS) | {"stream", "model", "messages"}))
            if clash:
                raise _usage_error(f"-o options holds {', '.join(clash)}, which are not provider-specific", hint=f"use -o {clash[0]} VALUE")
            for k, v in value.items():
                out.setdefault("provider_options", {})[k] = v
            continue
        if value is not None:
            out[name] = value
    extra = out.pop("provider_options", {})
    out.update(extra)
    return out


# ------------------------------------------------------------------------ -a
def attachment_part(spec: str) -> Any:
    """An :class:`~modelprov.types.ImagePart` for an image file, an ``http(s)`` URL or a ``data:`` URL."""
    from ..parts import ImagePart

    text = spec.strip()
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        return ImagePart(url=text)
    if lowered.startswith("data:"):
        if not lowered.startswith("data:image/") or ";base64," not in lowered:
            raise _usage_error(f"attachment {text[:40]!r}... is not a base64 image data URL", hint="use data:image/png;base64,...")
        return ImagePart(url=text)
    path = os.path.expanduser(text)
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except IsADirectoryError:
        raise _usage_error(f"attachment {spec!r} is a directory", hint="-a takes an image file or an http(s) URL") from None
    except OSError as exc:
        raise _usage_error(f"cannot read attachment {spec!r}: {exc.strerror or exc}", hint="-a takes an image file or an http(s) URL") from None
    media = _image_type(path, head)
    if media is None:
        raise _usage_error(
            f"attachment {spec!r} is not an image",
            hint="-a takes PNG, JPEG, GIF or WebP files (or another image type by its extension), or an http(s) URL",
        )
    return ImagePart(path=os.path.abspath(path), media_type=media)


def _image_type(path: str, head: bytes) -> Optional[str]:
    """The image media type from the file's first bytes, else its extension; ``None`` when it is not an image."""
    import mimetypes

    from ..parts import _sniff

    sniffed = _sniff(head)
    if sniffed.startswith("image/"):
        return sniffed
    guessed = mimetypes.guess_type(path)[0] or ""
    if not guessed.startswith("image/") or guessed == "image/svg+xml":
        return None
    if head and b"\0" not in head:  # plain text named like an image
        try:
            head.decode("utf-8")
            return None
        except UnicodeDecodeError:
            pass
    return guessed


# -------------------------------------------------------------------- schema
def concise_schema(text: str) -> Dict[str, Any]:
    """llm's concise schema: ``'name, age int, bio: a short bio'`` -> a JSON schema object.

    Fields are separated by newlines when there are any, else by commas;
    each is ``NAME [TYPE][: description]`` with TYPE one of str (default),
    int, float, bool. Every field is required.
    """
    items = text.splitlines() if "\n" in text.strip() else text.split(",")
    properties: Dict[str, Any] = {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        head, _, description = item.partition(":")
        words = head.split()
        if not words or len(words) > 2:
            raise _usage_error(f"schema field {item!r} is not 'name [type][: description]'", hint="e.g. --schema 'name, age int, bio: a short bio'")
        name = words[0]
        kind = words[1] if len(words) == 2 else "str"
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", name):
            raise _usage_error(f"schema field name {name!r} must be letters, digits, '_' or '-'")
        if kind not in _TYPES:
            hint = did_you_mean(kind, _TYPES) or "the types are str, int, float and bool"
            raise _usage_error(f"schema field {name!r} has unknown type {kind!r}", hint=hint)
        if name in properties:
            raise _usage_error(f"schema field {name!r} is given twice")
        prop: Dict[str, Any] = {"type": _TYPES[kind]}
        if description.strip():
            prop["description"] = description.strip()
        properties[name] = prop
    if not properties:
        raise _usage_error("the schema is empty", hint="e.g. --schema 'name, age int, bio: a short bio'")
    return {"type": "object", "properties": properties, "required": list(properties)}


def load_schema(spec: str) -> Dict[str, Any]:
    """The JSON schema ``--schema`` names: inline JSON (starts with ``{``), a file, or the concise form."""
    text = spec.strip()
    if not text:
        raise _usage_error("--schema is empty", hint="give a JSON schema, a file holding one, or e.g. 'name, age int'")
    source = "--schema"
    if not text.startswith("{") and os.path.isfile(os.path.expanduser(text)):
        source = text
        try:
            with open(os.path.expanduser(text), encoding="utf-8") as fh:
                text = fh.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise _usage_error(f"cannot read schema file {spec!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if not text.startswith("{"):
        if source != "--schema":
            raise _usage_error(f"schema file {source!r} does not hold a JSON object")
        return concise_schema(text)
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise _usage_error(f"{'the schema' if source == '--schema' else repr(source)} is not valid JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise _usage_error("the schema must be a JSON object")
    return schema


def response_format_for(schema: Dict[str, Any]) -> Dict[str, Any]:
    """The ``response_format`` asking for JSON that follows ``schema`` (an OpenAI ``json_schema`` format passes as is)."""
    if schema.get("type") == "json_schema" and isinstance(schema.get("json_schema"), dict):
        return schema
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


def parse_json_answer(text: str) -> Union[Dict[str, Any], List[Any], Any]:
    """The JSON value of a schema answer (a ```json fence around it is tolerated); raises ``ValueError``."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return json.loads(body)
