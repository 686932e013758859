"""Provider batch APIs: :func:`submit_batch` and :class:`BatchJob` (submit, poll, wait, results, cancel, re-attach).

OpenAI's Batch API and Anthropic's Message Batches run many chat requests
offline, within 24 hours, at about half the price. The wire lives in each
provider package (``providers/openai_compat/batch.py``,
``providers/anthropic/batch.py``: codecs, no I/O); this module does the I/O
through the provider's bound engine (so the client's transport, retry policy,
breaker and deadlines apply) and knows no provider's JSON.

Requests are validated and encoded exactly as :meth:`Client.complete
<modelprov.client.Client.complete>` would send them (the same
:class:`~modelprov.types.ChatRequest` validation and request body builder),
all before any I/O. A job is picklable and can be re-attached by id in
another process with :meth:`BatchJob.attach`; a pickled job carries its
client or provider settings, API key included, like a pickled
:class:`~modelprov.client.Client`.
"""

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Tuple, Type, Union

from .batch import parse_batch_item
from .deadline import Deadline
from .exceptions import ConfigurationError, ModelProvError, ProviderError, ProviderTimeoutError, UnsupportedFeatureError, ValidationError
from .providers.base import ModelProvider
from .types import ChatRequest, HTTPRequest, ModelResponse, ProviderConfig

__all__ = ["STATES", "BatchJob", "BatchStatus", "submit_batch"]

#: Normalized batch states; the provider's own value is kept in :attr:`BatchStatus.raw_state`.
STATES = ("validating", "in_progress", "finalizing", "cancelling", "completed", "failed", "expired", "cancelled")
#: States after which nothing changes any more.
DONE_STATES = frozenset(("completed", "failed", "expired", "cancelled"))
#: Registered provider types with a batch API -> the codec module and class.
_CODECS = {
    "openai": ("openai_compat.batch", "OpenAIBatchCodec"),
    "anthropic": ("anthropic.batch", "AnthropicBatchCodec"),
}

#: A batch id goes into the URL path: no '/', '?', '#', '%' or spaces.
_BATCH_ID = re.compile(r"[A-Za-z0-9_.:-]+")
Result = Tuple[str, Union[ModelResponse, ModelProvError]]
Entry = Tuple[str, ChatRequest]


class BatchCodec(Protocol):
    """What a provider's batch codec offers (see the two codec modules)."""

    one_model: bool
    max_requests: int

    def check_custom_id(self, custom_id: str) -> None: ...  # pragma: no cover - protocol
    def build_upload(self, entries: Sequence[Entry]) -> Optional[HTTPRequest]: ...  # pragma: no cover - protocol
    def parse_upload(self, body: Any) -> str: ...  # pragma: no cover - protocol
    def build_create(self, entries: Sequence[Entry], file_id: Optional[str], metadata: Optional[Mapping[str, str]]) -> HTTPRequest: ...  # pragma: no cover
    def build_status(self, batch_id: str) -> HTTPRequest: ...  # pragma: no cover - protocol
    def build_cancel(self, batch_id: str) -> HTTPRequest: ...  # pragma: no cover - protocol
    def parse_batch(self, body: Any) -> Dict[str, Any]: ...  # pragma: no cover - protocol
    def build_results(self, batch: Mapping[str, Any]) -> List[HTTPRequest]: ...  # pragma: no cover - protocol
    def parse_result(self, line: str) -> Result: ...  # pragma: no cover - protocol


@dataclass(frozen=True)
class BatchStatus:
    """One look at a batch: normalized ``state`` (one of :data:`STATES`), the provider's ``raw_state`` and counts.

    ``succeeded``, ``failed`` (errored, cancelled and expired requests),
    ``pending`` and ``total`` count requests (Anthropic reports succeeded and
    failed only once the batch ended). ``message`` says why a ``failed``
    batch was refused; ``raw`` is the provider's batch object.
    """

    id: str
    state: str
    raw_state: str
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    total: int = 0
    message: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True once the batch ended (completed, failed, expired or cancelled): results are final."""
        return self.state in DONE_STATES


def _codec_for(provider: ModelProvider) -> BatchCodec:
    """The batch codec of ``provider``'s registered type (or a type it derives from)."""
    import importlib

    for cls in type(provider).__mro__:
        found = _CODECS.get(getattr(cls, "name", "") or "")
        if found is not None:
            module = importlib.import_module(f".providers.{found[0]}", __package__)
            codec: BatchCodec = getattr(module, found[1])(provider)
            return codec
    raise UnsupportedFeatureError(
        f"{provider.instance_name} has no batch API in modelprov",
        provider=provider.instance_name,
        hint=f"provider batches work with {' and '.join(sorted(_CODECS))} (and instances of those types); use client.batch(...) for live calls",
    )


def _is_client(source: Any) -> bool:
    return not isinstance(source, ModelProvider) and callable(getattr(source, "provider", None)) and callable(getattr(source, "resolve", None))


def _engine_call(provider: ModelProvider, name: str) -> Any:
    engine: Any = provider.engine
    found = getattr(engine, name, None)
    if found is None:
        raise ConfigurationError(f"{provider.instance_name}'s engine cannot run batch calls", provider=provider.instance_name,
                                 hint="bind the provider with modelprov.engine.bind, or use a Client")  # fmt: skip
    return found


def _prefixed(exc: ModelProvError, where: str) -> ModelProvError:
    exc.message = f"{where}: {exc.message}"
    exc.args = (exc.message,)
    return exc


def _entries(codec: BatchCodec, source: Any, provider_name: str, model: str, requests: Sequence[Any], provider: ModelProvider) -> List[Entry]:
    """Every request validated into ``(custom_id, ChatRequest)``; custom ids assigned and checked; no I/O."""
    if not isinstance(requests, (list, tuple)):
        raise ValidationError(f"requests must be a list, not {type(requests).__name__}")
    if not requests:
        raise ValidationError("requests is empty: a batch needs at least one request")
    if len(requests) > codec.max_requests:
        raise ValidationError(f"{len(requests)} requests: {provider_name} batches take at most {codec.max_requests}", hint="split them into several batches")
    parsed: List[Tuple[Optional[str], Optional[str], Any, Dict[str, Any]]] = []
    seen: Dict[str, int] = {}
    for index, item in enumerate(requests):
        item_model, messages, opts = parse_batch_item(index, item)
        given = opts.pop("custom_id", None)
        if given is None:
            given = opts.pop("id", None)
        else:
            opts.pop("id", None)
        if given is not None:
            if not isinstance(given, str) or not given:
                raise ValidationError(f"requests[{index}] custom_id must be a non-empty string, not {given!r}")
            codec.check_custom_id(given)
            if given in seen:
                raise ValidationError(f"requests[{index}] repeats custom_id {given!r} of requests[{seen[given]}]; custom ids must be unique in a batch")
            seen[given] = index
        for bad in ("timeout", "stream"):
            if bad in opts:
                raise ValidationError(f"requests[{index}] passes {bad!r}, which a provider batch does not take")
        parsed.append((given, item_model, messages, opts))
    entries: List[Entry] = []
    counter = 0
    for index, (given, item_model, messages, opts) in enumerate(parsed):
        use_model = model
        if item_model is not None:
            target_provider, use_model = source.resolve(item_model) if source is not None else (provider_name, item_model)
            if target_provider != provider_name:
                raise ValidationError(f"requests[{index}] is for {target_provider}, but this batch goes to {provider_name}; one batch, one provider")
            if codec.one_model and use_model != model:
                raise ValidationError(f"requests[{index}] asks for model {use_model!r}; {provider_name} batches run one model ({model!r})")
        custom_id = given or f"request-{index + 1}"
        while seen.setdefault(custom_id, index) != index:  # another request's given id took this name
            counter += 1
            custom_id = f"request-{index + 1}-{counter}"
        try:
            req = provider.make_request(messages, model=use_model, **opts)
        except ModelProvError as exc:
            raise _prefixed(exc, f"requests[{index}]") from None
        entries.append((custom_id, req))
    return entries


def submit_batch(
    source: Any, model: Optional[str], requests: Sequence[Any], *, metadata: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None
) -> "BatchJob":
    """Submit ``requests`` to the provider's batch API and return the :class:`BatchJob`.

    :param source: a :class:`~modelprov.client.Client` (``model`` is a
        ``provider/model`` string or alias; fallbacks do not apply) or a bound
        provider (``model`` is the provider's model name; ``None``: its default).
    :param requests: prompts, message lists, ``(model, messages)`` pairs or
        dicts with ``messages`` (or ``prompt``), chat options and an optional
        ``custom_id`` (or ``id``), as :meth:`Client.batch <modelprov.client.Client.batch>`
        takes them. A missing id becomes ``request-N`` (N: the request's position from 1); a
        repeated id, a bad option or a request for another provider raises
        before any I/O. OpenAI batches run one model; Anthropic's may mix models.
    :param metadata: OpenAI batch metadata (up to 16 string pairs); ignored by Anthropic.
    :param timeout: overall deadline of each submit call (default: the provider's ``timeout``).
    """
    if metadata is not None and (not isinstance(metadata, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise ValidationError("metadata must be a dict of strings")
    if _is_client(source):
        name, model_name = source.resolve(model)
        provider: ModelProvider = source.provider(name)
        client = source
    elif isinstance(source, ModelProvider):
        provider, client, name = source, None, source.instance_name
        model_name = model or source.config.default_model or ""
        if not model_name:
            raise ConfigurationError(f"no model given for {name} and it has no default model", provider=name)
    else:
        raise ValidationError(f"submit_batch needs a Client or a provider, not {type(source).__name__}")
    codec = _codec_for(provider)
    entries = _entries(codec, client, name, model_name, requests, provider)
    provider.validate_config()
    exchange = _engine_call(provider, "exchange")
    upload = codec.build_upload(entries)
    file_id = None
    if upload is not None:
        file_id = exchange(provider, upload, provider.deadline(timeout), lambda r: codec.parse_upload(r.json()), None)
    create = codec.build_create(entries, file_id, metadata)
    # never resent: an answer lost after the provider accepted the batch would otherwise start (and bill) a second one
    fields = exchange(provider, create, provider.deadline(timeout), lambda r: codec.parse_batch(r.json()), None, retry=False)
    job = BatchJob(provider, fields["id"], source=client, custom_ids=[cid for cid, _ in entries])
    job.last_status = BatchStatus(**fields)
    return job


class BatchJob:
    """A batch running at a provider: :meth:`status`, :meth:`wait`, :meth:`results`, :meth:`cancel`.

    Made by :func:`submit_batch` or :meth:`attach`. ``id`` is the provider's
    batch id, ``provider`` the provider name, ``custom_ids`` the request ids
    in submit order (``None`` for an attached job) and ``last_status`` the
    latest :class:`BatchStatus` seen. Picklable: the copy talks through the
    same client (or a provider rebuilt from the same settings).
    """

    def __init__(self, provider: ModelProvider, batch_id: str, *, source: Any = None, custom_ids: Optional[List[str]] = None) -> None:
        self._setup(provider, batch_id, source, custom_ids)

    def _setup(self, provider: ModelProvider, batch_id: str, source: Any, custom_ids: Optional[List[str]]) -> None:
        if not isinstance(batch_id, str) or not _BATCH_ID.fullmatch(batch_id.strip()) or batch_id.strip() in (".", ".."):
            raise ValidationError(f"batch id must be a non-empty string of letters, digits, '_', '-', '.' or ':', not {batch_id!r}")
        self._provider = provider
        self._codec = _codec_for(provider)
        self._source = source
        self.id = batch_id.strip()
        self.provider: str = provider.instance_name
        self.custom_ids = custom_ids
        self.last_status: Optional[BatchStatus] = None

    @classmethod
    def attach(cls, source: Any, provider: Optional[str], batch_id: str) -> "BatchJob":
        """The job of batch ``batch_id`` at ``provider`` (a name; with a provider ``source`` it may be ``None``), e.g. in a new process.

        No I/O: the first :meth:`status` call tells whether the id exists
        (an unknown id raises the provider's not-found error).
        """
        if _is_client(source):
            if not isinstance(provider, str) or not provider:
                raise ValidationError("attach needs the provider name, e.g. BatchJob.attach(client, 'openai', batch_id)")
            return cls(source.provider(provider), batch_id, source=source)
        if isinstance(source, ModelProvider):
            if provider is not None and provider != source.instance_name:
                raise ValidationError(f"this provider is {source.instance_name!r}, not {provider!r}")
            return cls(source, batch_id)
        raise ValidationError(f"attach needs a Client or a provider, not {type(source).__name__}")

    def __repr__(self) -> str:
        state = f" state={self.last_status.state!r}" if self.last_status is not None else ""
        return f"<BatchJob {self.id!r} provider={self.provider!r}{state}>"

    # ---------------------------------------------------------------- pickling
    def __getstate__(self) -> Dict[str, Any]:
        state: Dict[str, Any] = {"id": self.id, "provider": self.provider, "custom_ids": self.custom_ids, "last_status": self.last_status}
        if self._source is not None:
            state["source"] = self._source
        else:
            state["provider_class"] = type(self._provider)
            state["config"] = self._provider.config
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        source = state.get("source")
        if source is not None:
            provider = source.provider(state["provider"])
        else:
            from .engine import bind

            cls: Type[ModelProvider] = state["provider_class"]
            config: ProviderConfig = state["config"]
            provider = bind(cls(config))
        self._setup(provider, state["id"], source, state["custom_ids"])
        self.last_status = state["last_status"]

    # -------------------------------------------------------------------- I/O
    def _call(self, request: HTTPRequest, handle: Callable[[Any], Any], deadline: Optional[Deadline]) -> Any:
        provider = self._provider
        try:
            return _engine_call(provider, "exchange")(provider, request, provider.deadline() if deadline is None else deadline, handle, None)
        except ProviderError as exc:
            if exc.status_code != 404:
                raise
            raise type(exc)(
                f"{self.provider} knows no batch {self.id!r} (or none of its files): {exc.message}",
                provider=self.provider,
                status_code=404,
                request_id=exc.request_id,
                hint="check the batch id, and that the client uses the key and base URL that submitted it",
            ) from None

    def _fetch(self, request: HTTPRequest, timeout: Optional[float], within: Optional[float] = None) -> BatchStatus:
        deadline = self._provider.deadline(timeout).within(within)
        fields = self._call(request, lambda r: self._codec.parse_batch(r.json()), deadline)
        status = self.last_status = BatchStatus(**fields)
        return status

    def status(self, *, timeout: Optional[float] = None) -> BatchStatus:
        """The batch's current :class:`BatchStatus` (one request)."""
        return self._fetch(self._codec.build_status(self.id), timeout)

    def cancel(self, *, timeout: Optional[float] = None) -> BatchStatus:
        """Ask the provider to cancel the batch; requests already done keep their results. Returns the new status."""
        return self._fetch(self._codec.build_cancel(self.id), timeout)

    def wait(
        self,
        poll_interval: float = 30.0,
        timeout: Optional[float] = None,
        on_progress: Optional[Callable[[BatchStatus], None]] = None,
        *,
        sleep: Optional[Callable[[float], None]] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> BatchStatus:
        """Poll every ``poll_interval`` seconds until the batch is done; return the final status.

        ``on_progress(status)`` is called after each poll. When ``timeout``
        seconds pass first, :class:`~modelprov.exceptions.ProviderTimeoutError`
        is raised (the batch keeps running: wait again later, or cancel it);
        each poll is bounded by the time left, so none runs past ``timeout``.
        ``sleep`` and ``clock`` default to the client's (``Client(sleep=, clock=)``).
        """
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) or not poll_interval > 0:
            raise ValidationError(f"poll_interval must be a positive number of seconds, not {poll_interval!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0):
            raise ValidationError(f"timeout must be a number of seconds >= 0 or None, not {timeout!r}")
        engine: Any = self._provider.engine
        sleep = sleep or getattr(engine, "sleep", None) or time.sleep
        clock = clock or getattr(engine, "clock", None) or time.monotonic
        started = clock()
        status, first = self.last_status, True
        while True:
            left = None if timeout is None else timeout - (clock() - started)
            if left is not None and left <= 0 and not first:
                raise self._still_running(status, timeout)
            try:  # each poll ends by the wait's own end (timeout=0: one poll, bounded by the provider's timeout)
                status = self._fetch(self._codec.build_status(self.id), None, left if left is not None and left > 0 else None)
            except ProviderTimeoutError:
                if timeout is None or clock() - started < timeout:
                    raise
                raise self._still_running(status, timeout) from None
            first = False
            if on_progress is not None:
                on_progress(status)
            if status.done:
                return status
            left = None if timeout is None else timeout - (clock() - started)
            if left is not None and left <= 0:
                raise self._still_running(status, timeout)
            sleep(poll_interval if left is None else min(poll_interval, left))

    def _still_running(self, status: Optional[BatchStatus], timeout: Optional[float]) -> ProviderTimeoutError:
        where = "still running" if status is None else f"still {status.state} ({status.succeeded + status.failed} of {status.total} done)"
        return ProviderTimeoutError(
            f"batch {self.id} is {where} after {timeout or 0:g} s",
            provider=self.provider,
            hint="call job.wait() again later (the batch keeps running), or job.cancel()",
        )

    def results(self, *, timeout: Optional[float] = None) -> Iterator[Result]:
        """Yield ``(custom_id, ModelResponse or error)`` for every request of a finished batch, in the provider's order.

        A request that failed gives the exception the provider's error mapping
        builds for it (an expired one a retryable
        :class:`~modelprov.exceptions.ProviderTimeoutError`, a cancelled one a
        :class:`~modelprov.exceptions.ProviderError` with
        ``extra["batch_result"] == "cancelled"``). Fetches the status first;
        a batch not done yet raises :class:`~modelprov.exceptions.ValidationError`.
        The files are streamed line by line; ``timeout`` bounds each download
        (default: none).
        """
        status = self.status()
        if not status.done:
            raise ValidationError(f"batch {self.id} is still {status.state}: no results yet", hint="call job.wait() first")
        downloads = self._codec.build_results(status.raw)
        return self._lines(downloads, timeout)

    def _lines(self, downloads: List[HTTPRequest], timeout: Optional[float]) -> Iterator[Result]:
        for request in downloads:
            response = self._call(request, lambda r: r, Deadline(timeout, clock=self._provider.engine.clock))
            try:
                pending: List[bytes] = []  # the start of a line cut across pieces
                for piece in response.iter_bytes():
                    if b"\n" not in piece:
                        pending.append(piece)
                        continue
                    first, *lines = piece.split(b"\n")
                    pending.append(first)
                    lines.insert(0, b"".join(pending))
                    pending = [lines.pop()]
                    for line in lines:
                        if line.strip():
                            yield self._codec.parse_result(line.decode("utf-8"))
                last = b"".join(pending)
                if last.strip():
                    yield self._codec.parse_result(last.decode("utf-8"))
            finally:
                response.close()
