"""``FakeBatches``: OpenAI's Batch API and Anthropic's Message Batches, stateful, inside :class:`~modelprov.testing.FakeServer`.

Every FakeServer answers these paths (when no queued reply matches first, so
faults can still be injected with ``path=``):

* OpenAI (base URL ``server.base_url("openai")``): ``POST /v1/files``
  (multipart, ``purpose=batch``), ``GET /v1/files/{id}`` and
  ``/v1/files/{id}/content``; ``POST /v1/batches``, ``GET /v1/batches/{id}``,
  ``POST /v1/batches/{id}/cancel``. An input file with a repeated
  ``custom_id``, a bad line or several models makes a ``failed`` batch with
  ``errors.data``, as the API does.
* Anthropic: ``POST /v1/messages/batches``, ``GET /v1/messages/batches/{id}``,
  ``POST .../cancel``, ``GET .../results`` (in reverse request order:
  clients must match by ``custom_id``).

Unknown ids get a 404 in the provider's error shape. Progress: each status
poll moves a batch one stage on (``polls_per_step``; ``0``: only
:meth:`FakeBatches.advance`). OpenAI: ``validating`` -> ``in_progress`` (half
the requests done) -> ``finalizing`` -> ``completed``; Anthropic:
``in_progress`` -> ``in_progress`` (half done) -> ``ended``. A cancel moves
to ``cancelling``/``canceling``; the next step ends the batch with the
requests not done yet cancelled; :meth:`FakeBatches.expire` ends it with
them expired.

Answers: by default each request answers ``"echo: <last user text>"``, and a
request whose last user text contains :attr:`FakeBatches.fail_marker`
(``"FAIL"``) fails with a 400 in the provider's error shape. Set
:attr:`FakeBatches.respond` to ``respond(custom_id, body) -> text`` or
``(status, message)`` to script them.
"""

import email.parser
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ._anthropic import anthropic_error_body, anthropic_message
from ._openai import openai_completion, openai_error_body
from .protocols import encode_json, request_id_header
from .replies import Payload, RecordedRequest

__all__ = ["BatchAnswer", "FakeBatch", "FakeBatches"]

#: ``respond(custom_id, request body) -> answer text, or (status, error message)``.
BatchAnswer = Callable[[str, Dict[str, Any]], Union[str, Tuple[int, str]]]

_OPENAI_STAGES = ("validating", "in_progress", "finalizing", "completed")
_ANTHROPIC_STAGES = ("in_progress", "in_progress", "ended")
_ENDPOINT = "/v1/chat/completions"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _last_user_text(messages: Any) -> str:
    for msg in reversed(messages if isinstance(messages, list) else []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


@dataclass
class FakeBatch:
    """One fake batch: its requests, their scripted outcomes and where it stands."""

    protocol: str
    id: str
    requests: List[Tuple[str, Dict[str, Any]]]
    outcomes: List[Union[str, Tuple[int, str]]]
    created_at: float
    stage: int = 0
    polls: int = 0
    cancel_at: Optional[float] = None
    ended: Optional[str] = None  # None, "completed", "cancelled", "expired", "failed"
    errors: List[Dict[str, Any]] = field(default_factory=list)
    input_file_id: Optional[str] = None
    output_file_id: Optional[str] = None
    error_file_id: Optional[str] = None
    results: bytes = b""

    @property
    def processed(self) -> int:
        """Requests answered so far: none, half, then all as the stages pass (none for a refused batch)."""
        n = len(self.requests)
        if self.ended == "failed":
            return 0
        if self.ended == "completed":
            return n
        table = (0, n // 2, n, n) if self.protocol == "openai" else (0, n // 2, n)
        return table[self.stage]


class FakeBatches:
    """The batch state of one :class:`~modelprov.testing.FakeServer` (``server.batches``); see the module docstring."""

    def __init__(self, url: str = "") -> None:
        self._url = url
        self._lock = threading.Lock()
        self._count = 0
        #: Status polls per stage (``0``: batches move only with :meth:`advance`).
        self.polls_per_step = 1
        #: A request whose last user text holds this fails with a 400.
        self.fail_marker = "FAIL"
        #: ``respond(custom_id, body)``: the answer text or ``(status, message)``; ``None``: echo (see the module docstring).
        self.respond: Optional[BatchAnswer] = None
        self.files: Dict[str, Tuple[str, bytes]] = {}
        self.batches: Dict[str, FakeBatch] = {}

    # ---------------------------------------------------------------- control
    def advance(self, batch_id: Optional[str] = None, steps: int = 1) -> None:
        """Move one batch (or every batch) ``steps`` stages on."""
        with self._lock:
            for batch in [self._known(batch_id)] if batch_id is not None else list(self.batches.values()):
                for _ in range(steps):
                    self._step(batch)

    def expire(self, batch_id: str) -> None:
        """End ``batch_id`` now as expired: the requests not done yet expire."""
        with self._lock:
            batch = self._known(batch_id)
            if batch.ended is None:
                self._finish(batch, "expired")

    def _known(self, batch_id: str) -> FakeBatch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise ValueError(f"this FakeServer has no batch {batch_id!r} (it has {', '.join(sorted(self.batches)) or 'none'})")
        return batch

    def handles(self, path: str) -> bool:
        """Whether ``path`` belongs to a batch API."""
        return path.startswith(("/v1/files", "/v1/batches", "/v1/messages/batches"))

    # ---------------------------------------------------------------- serving
    def answer(self, req: RecordedRequest) -> Payload:
        """The reply to one batch API request."""
        protocol = "anthropic" if req.path.startswith("/v1/messages/batches") else "openai"
        parts = [p for p in req.path.split("/") if p][2 if protocol == "openai" else 3 :]
        with self._lock:
            try:
                return self._route(protocol, req, parts)
            except _Refused as exc:
                return self._error(protocol, exc.status, exc.message)

    def _route(self, protocol: str, req: RecordedRequest, parts: List[str]) -> Payload:
        method = req.method
        if protocol == "openai" and req.path.startswith("/v1/files"):
            if method == "POST" and not parts:
                return self._json(protocol, self._upload(req))
            if method == "GET" and parts and parts[0] in self.files:
                if parts[1:] == ["content"]:
                    return Payload(200, [("Content-Type", "application/octet-stream")], body=self.files[parts[0]][1])
                if not parts[1:]:
                    return self._json(protocol, self._file_object(parts[0]))
            raise _Refused(404, f"No such File object: {parts[0] if parts else '?'}")
        if method == "POST" and not parts:
            return self._json(protocol, self._create(protocol, req.json))
        batch = self.batches.get(parts[0]) if parts else None
        if batch is None or batch.protocol != protocol:
            raise _Refused(404, f"No batch found with id '{parts[0] if parts else ''}'")
        if method == "GET" and len(parts) == 1:
            body = self._object(batch)
            batch.polls += 1
            if self.polls_per_step and batch.polls >= self.polls_per_step:
                batch.polls = 0
                self._step(batch)
            return self._json(protocol, body)
        if method == "POST" and parts[1:] == ["cancel"]:
            if batch.ended is None and batch.cancel_at is None:
                batch.cancel_at = time.time()
            return self._json(protocol, self._object(batch))
        if method == "GET" and parts[1:] == ["results"] and protocol == "anthropic":
            if batch.ended is None:
                raise _Refused(404, f"Batch '{batch.id}' has not ended yet; its results are not available")
            return Payload(200, [("Content-Type", "application/binary")], body=batch.results)
        raise _Refused(404, f"Unknown batch API path {req.path}")

    def _json(self, protocol: str, body: Dict[str, Any]) -> Payload:
        self._count += 1
        return Payload(200, [("Content-Type", "application/json"), (request_id_header(protocol), f"req_batch_{self._count}")], body=encode_json(body))

    def _error(self, protocol: str, status: int, message: str) -> Payload:
        # OpenAI's 404 for an unknown batch or file has no code (the builder's default, model_not_found, is for models)
        body = openai_error_body(status, message, code="") if protocol == "openai" else anthropic_error_body(status, message)
        if protocol == "openai":
            body["error"]["code"] = None
        return Payload(status, [("Content-Type", "application/json")], body=encode_json(body))

    # ---------------------------------------------------------------- OpenAI files
    def _upload(self, req: RecordedRequest) -> Dict[str, Any]:
        ctype = req.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise _Refused(400, "Files must be uploaded as multipart/form-data")
        msg = email.parser.BytesParser().parsebytes(b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + req.body)
        fields: Dict[str, Tuple[Optional[str], bytes]] = {}
        for part in msg.get_payload() if msg.is_multipart() else []:
            if isinstance(part, str):
                continue
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            fields[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
        if fields.get("purpose", (None, b""))[1] != b"batch":
            raise _Refused(400, "'purpose' must be 'batch' for batch input files")
        if "file" not in fields:
            raise _Refused(400, "Missing required parameter: 'file'")
        self._count += 1
        file_id = f"file-fake{self._count}"
        self.files[file_id] = (fields["file"][0] or "upload.jsonl", fields["file"][1])
        return self._file_object(file_id)

    def _file_object(self, file_id: str) -> Dict[str, Any]:
        name, data = self.files[file_id]
        purpose = "batch_output" if name.endswith(("_output.jsonl", "_error.jsonl")) else "batch"
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()), "filename": name,
                "purpose": purpose, "status": "processed", "expires_at": None, "status_details": None}  # fmt: skip

    # ---------------------------------------------------------------- creation
    def _outcome(self, custom_id: str, body: Dict[str, Any]) -> Union[str, Tuple[int, str]]:
        if self.respond is not None:
            return self.respond(custom_id, body)
        text = _last_user_text(body.get("messages"))
        if self.fail_marker and self.fail_marker in text:
            return (400, f"FakeServer: request {custom_id} asked to fail")
        return f"echo: {text}"

    def _create(self, protocol: str, body: Any) -> Dict[str, Any]:
        if not isinstance(body, dict):
            raise _Refused(400, "The request body must be a JSON object")
        self._count += 1
        if protocol == "openai":
            return self._object(self._create_openai(body))
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise _Refused(400, "requests: at least one request is required")
        items: List[Tuple[str, Dict[str, Any]]] = []
        for i, item in enumerate(requests):
            cid = item.get("custom_id") if isinstance(item, dict) else None
            params = item.get("params") if isinstance(item, dict) else None
            if not isinstance(cid, str) or not cid or len(cid) > 64 or not all(c.isalnum() or c in "_-" for c in cid):
                raise _Refused(400, f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
            if any(cid == seen for seen, _ in items):
                raise _Refused(400, f"requests.{i}: custom_id '{cid}' is not unique within the batch")
            if not isinstance(params, dict) or not all(k in params for k in ("model", "max_tokens", "messages")):
                raise _Refused(400, f"requests.{i}.params: model, max_tokens and messages are required")
            items.append((cid, params))
        batch = FakeBatch("anthropic", f"msgbatch_fake{self._count}", items, [self._outcome(c, b) for c, b in items], time.time())
        self.batches[batch.id] = batch
        return self._object(batch)

    def _create_openai(self, body: Dict[str, Any]) -> FakeBatch:
        file_id = body.get("input_file_id")
        if not isinstance(file_id, str) or file_id not in self.files:
            raise _Refused(404, f"No such File object: {file_id}")
        if body.get("endpoint") != _ENDPOINT:
            raise _Refused(400, f"Invalid endpoint {body.get('endpoint')!r}: this fake supports {_ENDPOINT}")
        if body.get("completion_window") != "24h":
            raise _Refused(400, "completion_window must be '24h'")
        items: List[Tuple[str, Dict[str, Any]]] = []
        errors: List[Dict[str, Any]] = []
        models = set()
        for number, raw in enumerate(self.files[file_id][1].decode("utf-8", "replace").splitlines(), 1):
            try:
                line = json.loads(raw)
            except ValueError:
                errors.append({"code": "invalid_json_line", "line": number, "message": "This line is not parseable as valid JSON."})
                continue
            cid, req = line.get("custom_id"), line.get("body")
            if not isinstance(cid, str) or line.get("method") != "POST" or line.get("url") != _ENDPOINT or not isinstance(req, dict):
                errors.append({"code": "invalid_request", "line": number, "message": "Each line needs custom_id, method POST, the batch's url and a body."})
            elif any(cid == seen for seen, _ in items):
                errors.append({"code": "duplicate_custom_id", "line": number, "message": "The custom_id for this request is a duplicate of another request."})
            else:
                models.add(req.get("model"))
                items.append((cid, req))
        if len(models) > 1:
            errors.append({"code": "mismatched_model", "line": None, "message": "All requests in a batch must use the same model."})
        batch = FakeBatch("openai", f"batch_fake{self._count}", items, [self._outcome(c, b) for c, b in items], time.time(), input_file_id=file_id)
        if errors:
            batch.errors = [dict(e, param=None) for e in errors]
            batch.ended = "failed"
        self.batches[batch.id] = batch
        return batch

    # ---------------------------------------------------------------- progress
    def _step(self, batch: FakeBatch) -> None:
        if batch.ended is not None:
            return
        if batch.cancel_at is not None:
            self._finish(batch, "cancelled")
            return
        last = len(_OPENAI_STAGES if batch.protocol == "openai" else _ANTHROPIC_STAGES) - 1
        batch.stage = min(batch.stage + 1, last)
        if batch.stage == last:
            self._finish(batch, "completed")

    def _finish(self, batch: FakeBatch, how: str) -> None:
        done = batch.processed if how != "completed" else len(batch.requests)
        batch.ended = how
        lines: List[Tuple[bool, Dict[str, Any]]] = []  # (in the output file, line)
        for n, ((cid, body), outcome) in enumerate(zip(batch.requests, batch.outcomes), 1):
            lines.append(self._result_line(batch, n, cid, body, outcome if n <= done else how))
        if batch.protocol == "anthropic":
            batch.results = b"".join(encode_json(line) + b"\n" for _, line in reversed(lines))
            return
        for ok, attr in ((True, "output_file_id"), (False, "error_file_id")):
            data = b"".join(encode_json(line) + b"\n" for good, line in lines if good is ok)
            if data:
                self._count += 1
                file_id = f"file-fake{self._count}"
                self.files[file_id] = (f"{batch.id}_{'output' if ok else 'error'}.jsonl", data)
                setattr(batch, attr, file_id)

    def _result_line(self, batch: FakeBatch, n: int, cid: str, body: Dict[str, Any], outcome: Union[str, Tuple[int, str]]) -> Tuple[bool, Dict[str, Any]]:
        model = str(body.get("model") or "fake-model")
        if batch.protocol == "anthropic":
            if outcome in ("cancelled", "expired"):
                return False, {"custom_id": cid, "result": {"type": "canceled" if outcome == "cancelled" else "expired"}}
            if isinstance(outcome, str):
                return True, {"custom_id": cid, "result": {"type": "succeeded", "message": anthropic_message(outcome, model=model, id=f"msg_fake{n}")}}
            error = anthropic_error_body(outcome[0], outcome[1], request_id=f"req_fake{n}")
            return False, {"custom_id": cid, "result": {"type": "errored", "error": error}}
        line: Dict[str, Any] = {"id": f"batch_req_fake{n}", "custom_id": cid, "response": None, "error": None}
        if outcome in ("cancelled", "expired"):
            line["error"] = {"code": f"batch_{outcome}", "message": f"This request was not executed: the batch was {outcome} first."}
            return False, line
        if isinstance(outcome, str):
            line["response"] = {"status_code": 200, "request_id": f"req_fake{n}", "body": openai_completion(outcome, model=model, id=f"chatcmpl-fake{n}")}
            return True, line
        line["response"] = {"status_code": outcome[0], "request_id": f"req_fake{n}", "body": openai_error_body(outcome[0], outcome[1])}
        return False, line

    # ---------------------------------------------------------------- objects
    def _counts(self, batch: FakeBatch) -> Tuple[int, int, int]:
        """(succeeded, failed, not done) as the batch's counts show them now."""
        done = len(batch.requests) if batch.ended == "completed" else batch.processed
        ok = sum(1 for o in batch.outcomes[:done] if isinstance(o, str))
        return ok, done - ok, len(batch.requests) - done

    def _object(self, batch: FakeBatch) -> Dict[str, Any]:
        ok, failed, rest = self._counts(batch)
        created = batch.created_at
        if batch.protocol == "openai":
            stage = _OPENAI_STAGES[batch.stage]
            status = {None: "cancelling" if batch.cancel_at else stage, "completed": "completed", "cancelled": "cancelled",
                      "expired": "expired", "failed": "failed"}[batch.ended]  # fmt: skip
            if batch.ended in ("cancelled", "expired"):
                failed += rest
            return {
                "id": batch.id, "object": "batch", "endpoint": _ENDPOINT, "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
                "input_file_id": batch.input_file_id, "completion_window": "24h", "status": status,
                "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id, "created_at": int(created),
                "expires_at": int(created) + 86400, "cancelling_at": int(batch.cancel_at) if batch.cancel_at else None,
                "request_counts": {"total": 0 if batch.ended == "failed" else len(batch.requests), "completed": ok, "failed": failed},
                "metadata": None,
            }  # fmt: skip
        ended = batch.ended is not None
        cancelled = rest if batch.ended == "cancelled" else 0
        expired = rest if batch.ended == "expired" else 0
        counts = {"processing": 0 if ended else len(batch.requests), "succeeded": ok if ended else 0, "errored": failed if ended else 0,
                  "canceled": cancelled, "expired": expired}  # fmt: skip
        return {
            "id": batch.id, "type": "message_batch", "processing_status": "ended" if ended else "canceling" if batch.cancel_at else "in_progress",
            "request_counts": counts, "created_at": _iso(created), "expires_at": _iso(created + 86400),
            "ended_at": _iso(time.time()) if ended else None, "archived_at": None,
            "cancel_initiated_at": _iso(batch.cancel_at) if batch.cancel_at else None,
            "results_url": f"{self._url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }  # fmt: skip


class _Refused(Exception):
    """An error answer: ``status`` and ``message`` in the provider's error shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
