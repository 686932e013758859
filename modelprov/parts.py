"""Content parts of a message: text, images, reasoning and provider-native blocks.

Frozen dataclasses, standard library only; re-exported by :mod:`modelprov.types`.
:func:`part_to_dict` / :func:`part_from_dict` give each part's plain-JSON form
(the content entries of :meth:`Message.to_dict <modelprov.messages.Message.to_dict>`):
lossless, images as base64, unknown keys refused with a message naming them.
"""

import base64
import binascii
import mimetypes
import os
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Dict, Mapping, Optional, Tuple, Union

from .exceptions import ValidationError

__all__ = [
    "ImagePart",
    "PART_TYPES",
    "Part",
    "ProviderPart",
    "ReasoningPart",
    "TextPart",
    "check_keys",
    "part_from_dict",
    "part_to_dict",
    "string_field",
]


@dataclass(frozen=True)
class TextPart:
    """A piece of text inside a message's content."""

    text: str
    type: str = field(default="text", init=False)


@dataclass(frozen=True)
class ImagePart:
    """An image given by ``url`` (http(s) or data URL), raw ``data`` bytes, or a file ``path``.

    Exactly one of the three must be set. ``media_type`` is guessed from the
    path, the data URL or the bytes' magic number when omitted.
    """

    url: Optional[str] = None
    data: Optional[bytes] = field(default=None, repr=False)
    path: Optional[str] = None
    media_type: Optional[str] = None
    detail: Optional[str] = None
    type: str = field(default="image", init=False)

    def __post_init__(self) -> None:
        given = [x for x in (self.url, self.data, self.path) if x is not None]
        if len(given) != 1:
            raise ValidationError("an image needs exactly one of url=, data= or path=")
        if self.url is not None and not isinstance(self.url, str):
            raise ValidationError(f"image url must be a string, not {type(self.url).__name__}")
        if self.path is not None and not isinstance(self.path, (str, os.PathLike)):
            raise ValidationError("image path must be a string or path-like")
        if self.data is not None and not isinstance(self.data, (bytes, bytearray)):
            raise ValidationError("image data must be bytes")

    @property
    def is_remote(self) -> bool:
        """True for an http(s) URL the provider must fetch itself."""
        return self.url is not None and not self.url.startswith("data:")

    def base64_data(self) -> Tuple[str, str]:
        """Return ``(media_type, base64 text)`` for inline transmission.

        Reads the file for ``path`` images; decodes a ``data:`` URL.
        Raises :class:`ValidationError` for a remote URL or an unreadable file.
        """
        if self.url is not None:
            if not self.url.startswith("data:"):
                raise ValidationError(f"image URL {self.url[:60]!r} is remote and cannot be inlined")
            header, _, payload = self.url.partition(",")
            media = header[5:].split(";")[0] or self.media_type or "image/png"
            if ";base64" not in header:
                raise ValidationError("only base64 data URLs are supported for images")
            return media, payload
        if self.path is not None:
            try:
                with open(self.path, "rb") as fh:
                    raw = fh.read()
            except OSError as exc:
                raise ValidationError(f"cannot read image file {os.fspath(self.path)!r}: {exc.strerror}") from exc
            media = self.media_type or mimetypes.guess_type(os.fspath(self.path))[0] or _sniff(raw)
        else:
            raw = bytes(self.data or b"")
            media = self.media_type or _sniff(raw)
        return media, base64.b64encode(raw).decode("ascii")

    def data_url(self) -> str:
        """The image as a URL: the remote URL itself, or a base64 ``data:`` URL."""
        if self.url is not None:
            return self.url
        media, b64 = self.base64_data()
        return f"data:{media};base64,{b64}"


def _sniff(raw: bytes) -> str:
    if raw.startswith(b"\x89PNG"):
        return "image/png"
    if raw.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if raw[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


@dataclass(frozen=True)
class ReasoningPart:
    """The model's reasoning (thinking) that came before its answer.

    ``text`` is the readable reasoning (a summary on some models, ``""`` when
    the provider withholds it). The other fields are the provider's opaque
    continuity data, kept so the turn can be sent back unchanged in a tool
    loop: Anthropic's ``signature`` (or ``redacted_data`` of a redacted
    thinking block) and OpenRouter's ``reasoning_details`` entries
    (``details``). ``provider`` names the provider instance the part came
    from; a part is sent back only to that provider (``None``: to any
    provider that can take it).

    Parts compare by all fields and are hashable: the hash covers ``text``,
    ``signature``, ``redacted_data`` and ``provider`` (``details`` holds
    dicts, so it is compared but not hashed).
    """

    text: str = ""
    signature: Optional[str] = field(default=None, repr=False)
    redacted_data: Optional[str] = field(default=None, repr=False)
    details: Tuple[Dict[str, Any], ...] = field(default=(), repr=False)
    provider: Optional[str] = None
    type: str = field(default="reasoning", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ValidationError(f"reasoning text must be a string, not {type(self.text).__name__}")
        for name in ("signature", "redacted_data", "provider"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"reasoning {name} must be a string, not {type(value).__name__}")
        if not isinstance(self.details, tuple):
            if not isinstance(self.details, list):
                raise ValidationError("reasoning details must be a list of dicts")
            object.__setattr__(self, "details", tuple(self.details))
        if not all(isinstance(d, dict) for d in self.details):
            raise ValidationError("reasoning details must be a list of dicts")

    def __hash__(self) -> int:
        return hash((self.text, self.signature, self.redacted_data, self.provider))

    @property
    def redacted(self) -> bool:
        """True for a block whose reasoning the provider encrypted (``redacted_data`` only)."""
        return self.redacted_data is not None

    def sendable_to(self, provider: str) -> bool:
        """Whether this part may be sent back to provider instance ``provider``."""
        return self.provider is None or self.provider == provider


@dataclass(frozen=True)
class ProviderPart:
    """A provider-native content block modelprov does not model (e.g. Anthropic server-tool blocks).

    Kept in order inside an answer's content so that sending the turn back
    to the same provider (resuming a paused turn) loses nothing; other
    providers never receive it. Hashable: the hash covers ``provider`` and
    the block's ``type`` and ``id`` (``data`` is compared, not hashed; do
    not change it after using the part as a key).
    """

    provider: str
    data: Dict[str, Any] = field(repr=False)
    type: str = field(default="provider", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.provider, str) or not self.provider:
            raise ValidationError("a provider part needs the provider's name")
        if not isinstance(self.data, dict):
            raise ValidationError("a provider part's data must be a dict")

    def __hash__(self) -> int:
        kind, ident = self.data.get("type"), self.data.get("id")
        return hash((self.provider, kind if isinstance(kind, str) else None, ident if isinstance(ident, str) else None))


Part = Union[TextPart, ImagePart, ReasoningPart, ProviderPart]
#: Part classes, for isinstance checks.
PART_TYPES = (TextPart, ImagePart, ReasoningPart, ProviderPart)


# ------------------------------------------------------------ plain JSON form
def part_to_dict(part: Part) -> Dict[str, Any]:
    """``part`` as a dict of JSON types (images as base64 ``data`` unless given by URL or path)."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ReasoningPart):
        out: Dict[str, Any] = {"type": "reasoning", "text": part.text}
        if part.signature is not None:
            out["signature"] = part.signature
        if part.redacted_data is not None:
            out["redacted_data"] = part.redacted_data
        if part.details:
            out["details"] = [dict(d) for d in part.details]
        if part.provider is not None:
            out["provider"] = part.provider
        return out
    if isinstance(part, ProviderPart):
        return {"type": "provider", "provider": part.provider, "data": dict(part.data)}
    if isinstance(part, ImagePart):
        img: Dict[str, Any] = {"type": "image"}
        if part.url is not None:
            img["url"] = part.url
        elif part.path is not None:
            img["path"] = str(part.path)
        else:
            img["data"] = base64.b64encode(bytes(part.data or b"")).decode("ascii")
        if part.media_type:
            img["media_type"] = part.media_type
        if part.detail:
            img["detail"] = part.detail
        return img
    raise ValidationError(f"cannot serialise a content part of type {type(part).__name__}")


def string_field(where: str, value: object, *, optional: bool = False) -> Optional[str]:
    """``value`` when it is a string (or ``None`` with ``optional``); else :class:`ValidationError` naming ``where``."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{where} must be a string, not {type(value).__name__}")
    return value


def check_keys(where: str, data: Mapping[str, Any], allowed: AbstractSet[str]) -> None:
    """Refuse keys of ``data`` outside ``allowed``, naming them."""
    unknown = set(data) - allowed
    if unknown:
        raise ValidationError(f"{where} has unknown key(s): {', '.join(sorted(map(str, unknown)))}")


def part_from_dict(where: str, data: object) -> Part:
    """The part :func:`part_to_dict` produced; a malformed dict raises :class:`ValidationError` naming ``where``."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where} must be a dict, not {type(data).__name__}")
    kind = data.get("type")
    if kind == "text":
        check_keys(where, data, {"type", "text"})
        return TextPart(text=string_field(f"{where}.text", data.get("text")) or "")
    if kind == "reasoning":
        check_keys(where, data, {"type", "text", "signature", "redacted_data", "details", "provider"})
        details = data.get("details") or []
        if not isinstance(details, list) or not all(isinstance(d, Mapping) for d in details):
            raise ValidationError(f"{where}.details must be a list of dicts")
        return ReasoningPart(
            text=string_field(f"{where}.text", data.get("text", "")) or "",
            signature=string_field(f"{where}.signature", data.get("signature"), optional=True),
            redacted_data=string_field(f"{where}.redacted_data", data.get("redacted_data"), optional=True),
            details=tuple(dict(d) for d in details),
            provider=string_field(f"{where}.provider", data.get("provider"), optional=True),
        )
    if kind == "provider":
        check_keys(where, data, {"type", "provider", "data"})
        block = data.get("data")
        if not isinstance(block, Mapping):
            raise ValidationError(f"{where}.data must be a dict")
        return ProviderPart(provider=string_field(f"{where}.provider", data.get("provider")) or "", data=dict(block))
    if kind == "image":
        check_keys(where, data, {"type", "url", "path", "data", "media_type", "detail"})
        raw: Optional[bytes] = None
        if data.get("data") is not None:
            try:
                raw = base64.b64decode(string_field(f"{where}.data", data["data"]) or "", validate=True)
            except (binascii.Error, ValueError):
                raise ValidationError(f"{where}.data is not valid base64") from None
        try:
            return ImagePart(
                url=string_field(f"{where}.url", data.get("url"), optional=True),
                data=raw,
                path=string_field(f"{where}.path", data.get("path"), optional=True),
                media_type=string_field(f"{where}.media_type", data.get("media_type"), optional=True),
                detail=string_field(f"{where}.detail", data.get("detail"), optional=True),
            )
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc.message}") from None
    raise ValidationError(f"{where} has unknown part type {kind!r} (expected text, image, reasoning or provider)")
