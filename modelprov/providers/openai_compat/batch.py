"""OpenAI's Batch API as a codec: the JSONL input file, the files and batches requests, status and result lines.

No I/O: :class:`OpenAIBatchCodec` builds each :class:`~modelprov.types.HTTPRequest`
and parses each answer; :mod:`modelprov.batch_jobs` sends them through the
provider's engine. The wire (official SDK types ``Batch``, ``FileObject``,
``BatchRequestCounts``, ``BatchError``):

* ``POST /files`` (multipart/form-data: ``purpose=batch`` and ``file``, a
  JSONL file of ``{"custom_id", "method": "POST", "url": "/v1/chat/completions",
  "body"}`` lines, one model per file, at most 50,000 lines and 200 MB);
* ``POST /batches`` ``{"input_file_id", "endpoint": "/v1/chat/completions",
  "completion_window": "24h", "metadata"?}``; ``GET /batches/{id}``;
  ``POST /batches/{id}/cancel``;
* ``status``: ``validating``, ``in_progress``, ``finalizing``, ``completed``,
  ``failed`` (the input file was refused: ``errors.data`` says why),
  ``expired``, ``cancelling``, ``cancelled``; ``request_counts``
  ``{completed, failed, total}``;
* ``GET /files/{output_file_id}/content`` and ``/files/{error_file_id}/content``:
  JSONL lines ``{"id", "custom_id", "response": {"status_code", "request_id",
  "body"} | null, "error": {"code", "message"} | null}``. A request that
  failed has a non-200 ``status_code`` with an error body, or (expired,
  cancelled) no response and an ``error``.

Each request body is the one :meth:`OpenAICompatProvider.build_chat_request`
builds for ``complete``, so the options are sent identically.
"""

import hashlib
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ...exceptions import InvalidRequestError, ModelProvError, ProviderError, ProviderTimeoutError, ResponseError, ValidationError, error_for_status
from ...types import ChatRequest, HTTPRequest, ModelResponse
from .codec import OpenAICompatProvider

__all__ = ["ENDPOINT", "OpenAIBatchCodec"]

#: The endpoint every request of a batch goes to (the batch's ``endpoint`` and each line's ``url``).
ENDPOINT = "/v1/chat/completions"
#: The API's limits on one input file.
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
_STATES = ("validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")

Result = Tuple[str, Union[ModelResponse, ModelProvError]]


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


def _id(value: Any, what: str, provider: str) -> str:
    if not isinstance(value, str) or not value:
        raise ResponseError(f"the {what} answer has no 'id'", provider=provider)
    return value


class OpenAIBatchCodec:
    """Requests and parsers of OpenAI's Batch API for one provider instance (see the module docstring)."""

    #: Every request of a batch must use the batch's model.
    one_model = True
    max_requests = MAX_REQUESTS

    def __init__(self, provider: OpenAICompatProvider) -> None:
        self.provider = provider
        self.name = provider.instance_name

    # ------------------------------------------------------------------ submit
    def check_custom_id(self, custom_id: str) -> None:
        """OpenAI takes any non-empty string (the caller checked the type)."""

    def line(self, custom_id: str, req: ChatRequest) -> Dict[str, Any]:
        """One input-file line: the body ``complete`` would send, addressed to :data:`ENDPOINT`."""
        http = self.provider.build_chat_request(req)
        return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": http.json}

    def build_upload(self, entries: Sequence[Tuple[str, ChatRequest]]) -> Optional[HTTPRequest]:
        """``POST /files``: the JSONL input file as a multipart upload with ``purpose=batch``."""
        data = "".join(json.dumps(self.line(cid, req), ensure_ascii=False, separators=(",", ":")) + "\n" for cid, req in entries).encode("utf-8")
        if len(data) > MAX_FILE_BYTES:
            raise ValidationError(
                f"the batch input file would be {len(data) / 1e6:.0f} MB; OpenAI takes at most 200 MB", hint="split the requests into several batches"
            )
        boundary = "modelprov-" + hashlib.sha256(data).hexdigest()[:32]  # cannot occur in the data it hashes
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="batch.jsonl"\r\n'
            "Content-Type: application/jsonl\r\n\r\n"
        ).encode("ascii")
        body = head + data + f"\r\n--{boundary}--\r\n".encode("ascii")
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return HTTPRequest(method="POST", path="/files", headers=headers, body=body)

    def parse_upload(self, body: Any) -> str:
        """The uploaded file's id."""
        return _id(body.get("id") if isinstance(body, dict) else None, "file upload", self.name)

    def build_create(self, entries: Sequence[Tuple[str, ChatRequest]], file_id: Optional[str], metadata: Optional[Mapping[str, str]]) -> HTTPRequest:
        """``POST /batches`` on :data:`ENDPOINT` with a 24 h completion window."""
        body: Dict[str, Any] = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h"}
        if metadata:
            body["metadata"] = dict(metadata)
        return HTTPRequest(method="POST", path="/batches", json=body)

    # ------------------------------------------------------------------ status
    def build_status(self, batch_id: str) -> HTTPRequest:
        """``GET /batches/{id}``."""
        return HTTPRequest(method="GET", path=f"/batches/{batch_id}")

    def build_cancel(self, batch_id: str) -> HTTPRequest:
        """``POST /batches/{id}/cancel``."""
        return HTTPRequest(method="POST", path=f"/batches/{batch_id}/cancel")

    def parse_batch(self, body: Any) -> Dict[str, Any]:
        """The fields of a :class:`~modelprov.batch_jobs.BatchStatus` from a ``batch`` object."""
        if not isinstance(body, dict):
            raise ResponseError(f"expected a batch object, got {type(body).__name__}", provider=self.name)
        raw_state = body.get("status")
        if raw_state not in _STATES:
            raise ResponseError(f"unknown batch status {raw_state!r}", provider=self.name)
        counts = _dict(body.get("request_counts"))
        done, failed, total = _count(counts.get("completed")), _count(counts.get("failed")), _count(counts.get("total"))
        errors = _dict(body.get("errors"))
        lines = [e for e in errors.get("data") or () if isinstance(e, dict)]
        message = "; ".join(
            (f"line {e['line']}: " if isinstance(e.get("line"), int) else "") + str(e.get("message") or e.get("code") or "error") for e in lines[:3]
        )
        return {
            "id": _id(body.get("id"), "batch", self.name),
            "state": raw_state,
            "raw_state": raw_state,
            "succeeded": done,
            "failed": failed,
            "pending": max(total - done - failed, 0),
            "total": total,
            "message": message or None,
            "raw": body,
        }

    # ----------------------------------------------------------------- results
    def build_results(self, batch: Mapping[str, Any]) -> List[HTTPRequest]:
        """The downloads holding the results: the output file, then the error file (those that exist).

        A batch that ``failed`` validation has none: :class:`InvalidRequestError` says why.
        """
        if batch.get("status") == "failed":
            errors = self.parse_batch(batch)["message"]
            raise InvalidRequestError(
                f"OpenAI refused the batch input: {errors or 'no reason given'}", provider=self.name, hint="fix the requests and submit a new batch"
            )
        ids = [batch.get("output_file_id"), batch.get("error_file_id")]
        accept = {"Accept": "application/jsonl"}
        return [HTTPRequest(method="GET", path=f"/files/{fid}/content", headers=accept, stream=True) for fid in ids if isinstance(fid, str) and fid]

    def parse_result(self, line: str) -> Result:
        """One result line -> ``(custom_id, ModelResponse or the error, typed by the provider's error mapping)``."""
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise ResponseError(f"invalid JSON in the batch results: {exc} (line starts {line[:80]!r})", provider=self.name) from None
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        if not isinstance(custom_id, str):
            raise ResponseError(f"a batch result line has no custom_id (starts {line[:80]!r})", provider=self.name)
        response = _dict(item.get("response")) or None
        if response is not None:
            status, body = response.get("status_code"), response.get("body")
            rid = response.get("request_id") if isinstance(response.get("request_id"), str) else None
            if status == 200 and isinstance(body, dict):
                try:
                    result = self.provider.parse_chat_response(body)
                except ModelProvError as exc:
                    return custom_id, exc
                if result.request_id is None:
                    result.request_id = rid
                return custom_id, result
            if type(status) is int and status >= 400:
                text = json.dumps(body) if body is not None else ""
                error = self.provider.parse_error(status, body, text, {}) or error_for_status(status)(
                    f"HTTP {status} for this request", provider=self.name, status_code=status
                )
                if error.request_id is None:
                    error.request_id = rid
                return custom_id, error
        return custom_id, self._line_error(item.get("error"))

    def _line_error(self, error: Any) -> ModelProvError:
        err = error if isinstance(error, dict) else {}
        code = str(err.get("code") or "")
        message = str(err.get("message") or code or "the batch returned no answer for this request")
        if code == "batch_expired":
            return ProviderTimeoutError(message, provider=self.name, retryable=True, batch_result="expired",
                                        hint="the batch's 24 h window ended first; submit this request again")  # fmt: skip
        if code == "batch_cancelled":
            return ProviderError(message, provider=self.name, retryable=False, batch_result="cancelled", hint="the batch was cancelled before this request ran")
        return ProviderError(message, provider=self.name, error_code=code or None)
