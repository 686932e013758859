"""The exception tree: fields, messages, pickling, classify() and redaction."""

import pickle

import pytest

from modelprov import exceptions as E

ALL = [
    getattr(E, name)
    for name in E.__all__
    if isinstance(getattr(E, name), type) and issubclass(getattr(E, name), E.ModelProvError)
]
SENTINEL = "sk-proj-SENTINELabcdef0123456789"


def test_tree_matches_design():
    assert issubclass(E.ConfigurationError, E.ModelProvError)
    assert issubclass(E.ValidationError, ValueError)
    for cls in (
        E.AuthenticationError,
        E.PermissionDeniedError,
        E.ModelNotFoundError,
        E.InvalidRequestError,
        E.RateLimitError,
        E.ServerError,
        E.ProviderConnectionError,
        E.ProviderTimeoutError,
        E.ResponseError,
    ):
        assert issubclass(cls, E.ProviderError)
    assert issubclass(E.TokenLimitError, E.InvalidRequestError)
    assert issubclass(E.ContentFilterError, E.InvalidRequestError)
    assert issubclass(E.QuotaExceededError, E.RateLimitError)
    assert issubclass(E.OverloadedError, E.ServerError)
    assert not issubclass(E.CircuitBreakerError, E.ProviderError)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_exception_pickles_with_its_fields(cls):
    kwargs = dict(provider="openai", status_code=429, request_id="req_1", retry_after=2.5, hint="do this", headers={"retry-after": "2"})
    if cls is E.TokenLimitError:
        kwargs.update(limit=8192, requested=9000)
    exc = cls("something failed", **kwargs)
    exc.attempts.append({"attempt": 1, "error": "ServerError"})
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls
    assert str(back) == str(exc)
    for field in ("message", "provider", "status_code", "request_id", "retryable", "retry_after", "hint", "attempts", "headers"):
        assert getattr(back, field) == getattr(exc, field)
    if cls is E.TokenLimitError:
        assert (back.limit, back.requested) == (8192, 9000)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_message_is_one_line_and_never_holds_a_secret(cls):
    exc = cls(f"bad key {SENTINEL}\nsecond line", provider="openai", hint=f"key was {SENTINEL}")
    text, rep = str(exc), repr(exc)
    assert SENTINEL not in text and SENTINEL not in rep
    assert "\n" not in text
    assert text.startswith("[openai] bad key")


def test_message_names_status_request_id_and_hint():
    exc = E.RateLimitError("slow down", provider="anthropic", status_code=429, request_id="req_9", retry_after=3)
    assert str(exc) == "[anthropic] slow down (HTTP 429, request id req_9, retry after 3s). Slow down or retry later."


def test_long_messages_are_shortened():
    exc = E.ServerError("x" * 5000)
    assert len(exc.message) <= 500


def test_retryable_defaults_and_override():
    assert E.RateLimitError("x").retryable
    assert not E.QuotaExceededError("x").retryable
    assert E.ServerError("x").retryable and E.OverloadedError("x").retryable
    assert E.ProviderConnectionError("x").retryable and E.ProviderTimeoutError("x").retryable
    assert not E.InvalidRequestError("x").retryable and not E.AuthenticationError("x").retryable
    assert not E.ServerError("x", retryable=False).retryable


@pytest.mark.parametrize(
    "exc, category",
    [
        (E.AuthenticationError("x"), "auth"),
        (E.PermissionDeniedError("x"), "auth"),
        (E.InvalidRequestError("x"), "invalid_request"),
        (E.TokenLimitError("x"), "invalid_request"),
        (E.ValidationError("x"), "invalid_request"),
        (E.RateLimitError("x"), "rate_limit"),
        (E.QuotaExceededError("x"), "quota"),
        (E.OverloadedError("x"), "transient"),
        (E.ServerError("x"), "server"),
        (E.ProviderTimeoutError("x"), "timeout"),
        (E.ProviderConnectionError("x"), "connection"),
        (E.CircuitBreakerError("x"), "circuit_open"),
        (TimeoutError(), "timeout"),
        (ConnectionResetError(), "connection"),
        (KeyError("x"), "unknown"),
    ],
)
def test_classify(exc, category):
    assert E.classify(exc).value == category


@pytest.mark.parametrize(
    "status, cls",
    [(400, E.InvalidRequestError), (401, E.AuthenticationError), (402, E.QuotaExceededError), (403, E.PermissionDeniedError),
     (404, E.ModelNotFoundError), (408, E.ProviderTimeoutError), (413, E.InvalidRequestError), (422, E.InvalidRequestError),
     (429, E.RateLimitError), (500, E.ServerError), (502, E.ServerError), (503, E.OverloadedError), (529, E.OverloadedError),
     (418, E.InvalidRequestError)],
)
def test_error_for_status(status, cls):
    assert E.error_for_status(status) is cls


def test_to_dict_is_json_friendly():
    import json

    d = E.RateLimitError("slow", provider="openai", status_code=429).to_dict()
    assert d["type"] == "RateLimitError" and d["category"] == "rate_limit" and d["status_code"] == 429
    json.dumps(d)


def test_missing_key_message_says_how_to_fix():
    from modelprov.providers.base import ModelProvider
    from modelprov.providers.mock import MockProvider
    from modelprov.types import ProviderCapabilities

    class Keyed(ModelProvider):
        name = "keyed"
        capabilities = ProviderCapabilities()
        api_key_env = ("KEYED_API_KEY",)
        requires_api_key = True

    text = str(Keyed().missing_key_error())
    assert "KEYED_API_KEY" in text and "modelprov keys set keyed" in text
    assert MockProvider().validate_config() is None
