"""Anthropic's Message Batches API as a codec: the create, status, cancel and results requests and their answers.

No I/O: :class:`AnthropicBatchCodec` builds each :class:`~modelprov.types.HTTPRequest`
and parses each answer; :mod:`modelprov.batch_jobs` sends them through the
provider's engine. The wire (official SDK types ``MessageBatch``,
``MessageBatchRequestCounts``, ``MessageBatchIndividualResponse``):

* ``POST /v1/messages/batches`` ``{"requests": [{"custom_id", "params"}]}``
  (``custom_id``: 1-64 letters, digits, ``_`` or ``-``, unique in the batch;
  at most 100,000 requests); ``GET /v1/messages/batches/{id}``;
  ``POST /v1/messages/batches/{id}/cancel``;
* ``processing_status``: ``in_progress``, ``canceling``, ``ended``;
  ``request_counts`` ``{processing, succeeded, errored, canceled, expired}``
  (all but ``processing`` stay 0 until the batch ends);
* ``GET /v1/messages/batches/{id}/results`` (the batch's ``results_url``),
  JSONL lines ``{"custom_id", "result": {"type": "succeeded", "message"} |
  {"type": "errored", "error": {"type": "error", "error": {"type", "message"}}}
  | {"type": "canceled"} | {"type": "expired"}}`` in no particular order. The
  results are fetched from the configured base URL (never from another host
  the answer names), so the key goes only where the other calls go.

Each ``params`` is the body :meth:`AnthropicProvider.build_chat_request` builds
for ``complete`` (its per-call ``anthropic-beta`` headers go on the create
request), so the options are sent identically.
"""

import json
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ...exceptions import ModelProvError, ProviderError, ProviderTimeoutError, ResponseError, ValidationError
from ...types import ChatRequest, HTTPRequest, ModelResponse
from .errors import error_from_type
from .provider import AnthropicProvider

__all__ = ["AnthropicBatchCodec"]

MAX_REQUESTS = 100_000
_PATH = "/v1/messages/batches"
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Result = Tuple[str, Union[ModelResponse, ModelProvError]]


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


class AnthropicBatchCodec:
    """Requests and parsers of Anthropic's Message Batches API for one provider instance (see the module docstring)."""

    #: Requests of one batch may use different models.
    one_model = False
    max_requests = MAX_REQUESTS

    def __init__(self, provider: AnthropicProvider) -> None:
        self.provider = provider
        self.name = provider.instance_name

    # ------------------------------------------------------------------ submit
    def check_custom_id(self, custom_id: str) -> None:
        """Anthropic's rule: 1-64 letters, digits, ``_`` or ``-``."""
        if not _CUSTOM_ID.match(custom_id):
            raise ValidationError(f"custom_id {custom_id!r} is not valid for Anthropic batches: use 1-64 letters, digits, '_' or '-'")

    def build_upload(self, entries: Sequence[Tuple[str, ChatRequest]]) -> Optional[HTTPRequest]:
        """No upload: the requests go inline."""
        return None

    def parse_upload(self, body: Any) -> str:  # pragma: no cover - never called (no upload)
        """Not used."""
        raise NotImplementedError

    def build_create(self, entries: Sequence[Tuple[str, ChatRequest]], file_id: Optional[str], metadata: Optional[Mapping[str, str]]) -> HTTPRequest:
        """``POST /v1/messages/batches`` with every request inline (``metadata`` has no place on this API)."""
        requests: List[Dict[str, Any]] = []
        betas: List[str] = []
        for custom_id, req in entries:
            http = self.provider.build_chat_request(req)
            requests.append({"custom_id": custom_id, "params": http.json})
            for beta in (http.headers.get("anthropic-beta") or "").split(","):
                if beta.strip() and beta.strip() not in betas:
                    betas.append(beta.strip())
        headers = {"anthropic-beta": ",".join(betas)} if betas else {}
        return HTTPRequest(method="POST", path=_PATH, headers=headers, json={"requests": requests})

    # ------------------------------------------------------------------ status
    def build_status(self, batch_id: str) -> HTTPRequest:
        """``GET /v1/messages/batches/{id}``."""
        return HTTPRequest(method="GET", path=f"{_PATH}/{batch_id}")

    def build_cancel(self, batch_id: str) -> HTTPRequest:
        """``POST /v1/messages/batches/{id}/cancel``."""
        return HTTPRequest(method="POST", path=f"{_PATH}/{batch_id}/cancel")

    def parse_batch(self, body: Any) -> Dict[str, Any]:
        """The fields of a :class:`~modelprov.batch_jobs.BatchStatus` from a ``message_batch`` object.

        ``ended`` becomes ``cancelled`` when a cancel was asked for, ``expired``
        when requests expired, else ``completed``; ``canceling`` becomes ``cancelling``.
        """
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
            raise ResponseError("expected a message_batch object with an 'id'", provider=self.name)
        raw_state = body.get("processing_status")
        counts = _dict(body.get("request_counts"))
        ok, errored = _count(counts.get("succeeded")), _count(counts.get("errored"))
        canceled, expired, pending = _count(counts.get("canceled")), _count(counts.get("expired")), _count(counts.get("processing"))
        if raw_state == "in_progress":
            state = "in_progress"
        elif raw_state == "canceling":
            state = "cancelling"
        elif raw_state == "ended":
            state = "cancelled" if body.get("cancel_initiated_at") else "expired" if expired else "completed"
        else:
            raise ResponseError(f"unknown batch processing_status {raw_state!r}", provider=self.name)
        failed = errored + canceled + expired
        return {
            "id": body["id"],
            "state": state,
            "raw_state": raw_state,
            "succeeded": ok,
            "failed": failed,
            "pending": pending,
            "total": ok + failed + pending,
            "message": None,
            "raw": body,
        }

    # ----------------------------------------------------------------- results
    def build_results(self, batch: Mapping[str, Any]) -> List[HTTPRequest]:
        """``GET /v1/messages/batches/{id}/results`` once the batch ended (none before)."""
        if batch.get("processing_status") != "ended":
            return []
        return [HTTPRequest(method="GET", path=f"{_PATH}/{batch['id']}/results", headers={"Accept": "application/binary"}, stream=True)]

    def parse_result(self, line: str) -> Result:
        """One result line -> ``(custom_id, ModelResponse or the error, typed by the provider's error mapping)``."""
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise ResponseError(f"invalid JSON in the batch results: {exc} (line starts {line[:80]!r})", provider=self.name) from None
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        result = item.get("result") if isinstance(item, dict) else None
        if not isinstance(custom_id, str) or not isinstance(result, dict):
            raise ResponseError(f"a batch result line has no custom_id or result (starts {line[:80]!r})", provider=self.name)
        kind = result.get("type")
        if kind == "succeeded":
            try:
                return custom_id, self.provider.parse_chat_response(result.get("message"))
            except ModelProvError as exc:
                return custom_id, exc
        if kind == "errored":
            outer = _dict(result.get("error"))
            err = _dict(outer.get("error")) or outer
            rid = outer.get("request_id") if isinstance(outer.get("request_id"), str) else None
            details = _dict(err.get("details")) or None
            message = str(err.get("message") or "the request failed")
            error_type = err.get("type") if isinstance(err.get("type"), str) else None
            return custom_id, error_from_type(error_type, message, provider=self.name, request_id=rid, details=details)
        if kind == "expired":
            return custom_id, ProviderTimeoutError("the batch expired before this request was processed", provider=self.name, retryable=True,
                                                   batch_result="expired", hint="submit this request again")  # fmt: skip
        if kind == "canceled":
            return custom_id, ProviderError("the batch was cancelled before this request was processed", provider=self.name, retryable=False,
                                            batch_result="cancelled")  # fmt: skip
        raise ResponseError(f"unknown batch result type {kind!r} for {custom_id!r}", provider=self.name)
