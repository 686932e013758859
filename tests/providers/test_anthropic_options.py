"""Anthropic API versions, options a target does not take, the reasoning mapping, caching, errors and models.

HTTP goes through the loopback FakeServer; "before I/O" means the server recorded no request.
"""

import logging

import pytest

from modelprov import Client
from modelprov.engine import bind
from modelprov.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    OverloadedError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    TokenLimitError,
    UnsupportedFeatureError,
    ValidationError,
)
from modelprov.providers.anthropic.models import model_traits, plan_reasoning
from modelprov.providers.anthropic.provider import DEFAULT_MAX_TOKENS, AnthropicProvider
from modelprov.retry import RetryPolicy
from modelprov.testing import FakeServer, anthropic_error_body
from modelprov.types import ProviderConfig

KEY = "sk-ant-test-0123456789abcdef"
MODEL = "claude-haiku-4-5"
LEGACY = "2023-06-01"
DEPRECATED = "`temperature` is deprecated for this model."


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


def make(server=None, drop=False, retry=None, **options):
    cfg = ProviderConfig(name="anthropic", api_key=KEY, base_url=server.url if server else "http://127.0.0.1:9",
                         drop_unsupported=drop, options=tuple(sorted(options.items())))  # fmt: skip
    return bind(AnthropicProvider(cfg), sleep=lambda s: None, retry=retry)


def client(server, **settings):
    drop = settings.pop("drop_unsupported", None)
    return Client(drop_unsupported=drop, providers={"anthropic": dict({"api_key": "k", "base_url": server.url}, **settings)})


def body(p, *args, **kw):
    return p.build_chat_request(p.make_request(*args, **kw)).json


# ------------------------------------------------------------------ API version
def test_default_version_headers_and_selectable_legacy(server):
    server.set_default("anthropic", "ok")
    make(server).generate("Hi", model=MODEL)
    make(server, api_version=LEGACY).generate("Hi", model=MODEL)
    new, old = server.requests
    assert new.headers["anthropic-version"] == "2026-10-21" and new.headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in new.headers
    assert old.headers["anthropic-version"] == LEGACY and old.headers["x-api-key"] == KEY
    assert "authorization" not in old.headers


def test_api_version_from_the_environment(monkeypatch, server):
    monkeypatch.setenv("ANTHROPIC_API_VERSION", LEGACY)
    server.add_chat("anthropic", "ok")
    assert client(server).complete(f"anthropic/{MODEL}", "Hi", temperature=0.4).text == "ok"
    assert server.last_request.headers["anthropic-version"] == LEGACY and server.last_request.json["temperature"] == 0.4


def test_explicit_api_version_wins_over_the_environment(monkeypatch, server):
    monkeypatch.setenv("ANTHROPIC_API_VERSION", LEGACY)
    server.add_chat("anthropic", "ok")
    client(server, api_version="2026-10-21").complete(f"anthropic/{MODEL}", "Hi")
    assert server.last_request.headers["anthropic-version"] == "2026-10-21"


@pytest.mark.parametrize("value", ["2024-01-01", "latest", ""])
def test_unknown_api_version_fails_before_io_naming_the_allowed_ones(server, value):
    p = make(server, api_version=value)
    with pytest.raises(ConfigurationError) as info:
        p.generate("Hi", model=MODEL)
    assert "2026-10-21" in str(info.value) and LEGACY in str(info.value)
    with pytest.raises(ConfigurationError):
        p.validate_config()
    with pytest.raises(ConfigurationError):
        next(iter(p.stream("Hi", model=MODEL)))
    assert server.requests == []


# -------------------------------------------------------- unsupported options
@pytest.mark.parametrize("option, value", [("temperature", 0.5), ("temperature", 1.0), ("top_p", 0.9), ("top_k", 40)])
def test_sampling_options_are_refused_before_io_under_2026(server, option, value):
    c = client(server)
    with pytest.raises(UnsupportedFeatureError) as info:
        c.complete(f"anthropic/{MODEL}", "Hi", **{option: value})
    exc = info.value
    assert exc.extra["option"] == option and exc.provider == "anthropic" and MODEL in str(exc)
    assert "2026-10-21" in str(exc) and "drop_unsupported=True" in str(exc)
    with pytest.raises(UnsupportedFeatureError):
        next(iter(c.stream(f"anthropic/{MODEL}", "Hi", **{option: value})))
    assert server.requests == []


def test_drop_unsupported_sends_without_temperature_and_names_it(server, caplog):
    server.add_chat("anthropic", "ok")
    server.add_chat("anthropic", "streamed")
    c = Client(drop_unsupported=True, providers={"anthropic": {"api_key": "k", "base_url": server.url}})
    with caplog.at_level(logging.WARNING, logger="modelprov"):
        r = c.complete(f"anthropic/{MODEL}", "Hi", temperature=0.3)
    assert r.text == "ok" and r.dropped_options == ["temperature"]
    assert "temperature" not in server.requests[0].json
    assert any("temperature" in rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING)
    chunks = list(c.stream(f"anthropic/{MODEL}", "Hi", temperature=0.3, top_p=0.5))
    assert chunks[-1].dropped_options == ["temperature", "top_p"]
    assert not {"temperature", "top_p"} & set(server.requests[1].json)


def test_legacy_version_sends_sampling_to_older_models(server):
    server.add_chat("anthropic", "ok")
    make(server, api_version=LEGACY).generate("Hi", model="claude-sonnet-4-6", temperature=0.2, top_p=0.8, top_k=30)
    sent = server.last_request.json
    assert (sent["temperature"], sent["top_p"], sent["top_k"]) == (0.2, 0.8, 30)


@pytest.mark.parametrize("model", ["claude-opus-4-7", "claude-opus-4-8", "claude-opus-5", "claude-sonnet-5-5",
                                   "claude-haiku-5-5", "claude-fable-5-2", "claude-mythos-5", "claude-mythos-preview",
                                   "anthropic/claude-opus-4.7"])  # fmt: skip
def test_legacy_version_refuses_sampling_on_models_that_take_none(server, model):
    with pytest.raises(UnsupportedFeatureError) as info:
        make(server, api_version=LEGACY).generate("Hi", model=model, temperature=0.5)
    assert info.value.extra["option"] == "temperature" and "Claude 5" in str(info.value)
    assert server.requests == []


@pytest.mark.parametrize("model, sampling", [("claude-haiku-4-5", True), ("claude-haiku-4-5-20251001", True),
                                             ("claude-opus-4-5-20251101", True), ("claude-sonnet-4-6", True),
                                             ("claude-opus-4-6", True), ("claude-3-7-sonnet-latest", True),
                                             ("claude-opus-4-1-20250805", True), ("my-proxy-model", True),
                                             ("claude-opus-4-7", False), ("claude-opus-4-20250514", True)])  # fmt: skip
def test_sampling_rule_by_model_id(model, sampling):
    assert model_traits(model).sampling is sampling


def test_legacy_temperature_range_is_still_checked(server):
    with pytest.raises(ValidationError, match="between 0 and 1"):
        make(server, api_version=LEGACY).generate("Hi", model=MODEL, temperature=1.5)
    assert server.requests == []


def test_runtime_deprecated_temperature_400_is_unsupported_feature(server):
    server.add_error(400, protocol="anthropic", message=DEPRECATED, request_id="req_t")
    with pytest.raises(UnsupportedFeatureError) as info:
        make(server, api_version=LEGACY).generate("Hi", model="claude-new-model", temperature=0.5)
    exc = info.value
    assert (exc.extra["option"], exc.extra["param"], exc.status_code, exc.request_id) == ("temperature", "temperature", 400, "req_t")
    assert len(server.requests) == 1  # not retried


def test_runtime_400_is_resent_once_without_the_option_and_remembered(server):
    server.add_error(400, protocol="anthropic", message=DEPRECATED)
    server.add_chat("anthropic", "first")
    server.add_chat("anthropic", "second")
    c = Client(drop_unsupported=True, providers={"anthropic": {"api_key": "k", "base_url": server.url, "api_version": LEGACY}})
    r = c.complete("anthropic/claude-next-model", "Hi", temperature=0.5)
    assert (r.text, r.dropped_options) == ("first", ["temperature"])
    assert [("temperature" in q.json) for q in server.requests] == [True, False]
    r = c.complete("anthropic/claude-next-model", "Hi", temperature=0.5)
    assert (r.text, r.dropped_options) == ("second", ["temperature"])
    assert len(server.requests) == 3 and "temperature" not in server.requests[2].json  # no second 400


def test_runtime_400_in_a_stream_is_resent_once_without_the_option(server):
    server.add_error(400, protocol="anthropic", message="top_k: Extra inputs are not permitted")
    server.add_chat("anthropic", "streamed ok")
    p = make(server, drop=True, api_version=LEGACY)
    chunks = list(p.stream("Hi", model="claude-next-model", top_k=5))
    assert "".join(c.text for c in chunks) == "streamed ok" and chunks[-1].dropped_options == ["top_k"]
    assert "top_k" in server.requests[0].json and "top_k" not in server.requests[1].json


@pytest.mark.parametrize(
    "message, option, param",
    [(DEPRECATED, "temperature", "temperature"), ("`top_p` is deprecated for this model.", "top_p", "top_p"),
     ("temperature: Extra inputs are not permitted", "temperature", "temperature"),
     ("stop_sequences: Extra inputs are not permitted", "stop", "stop_sequences"),
     ("speed: Extra inputs are not permitted", "speed", "speed"),
     ("thinking: Extra inputs are not permitted", "reasoning", "thinking")],
)  # fmt: skip
def test_messages_naming_a_field_map_to_the_option(message, option, param):
    exc = make().parse_error(400, anthropic_error_body(400, message), "", {})
    assert isinstance(exc, UnsupportedFeatureError)
    assert (exc.extra["option"], exc.extra["param"]) == (option, param)


@pytest.mark.parametrize("message", ["messages.0.content.0.citations: Extra inputs are not permitted",
                                     "model: Extra inputs are not permitted", "messages: field required"])  # fmt: skip
def test_other_400s_stay_invalid_request_errors(message):
    exc = make().parse_error(400, anthropic_error_body(400, message), "", {})
    assert type(exc) is InvalidRequestError


def test_seed_stays_unsupported_even_with_drop(server):
    with pytest.raises(UnsupportedFeatureError, match="seed"):
        make(server, drop=True).generate("Hi", model=MODEL, seed=1)
    assert server.requests == []


# ------------------------------------------------------------- reasoning mapping
@pytest.mark.parametrize(
    "model, reasoning, thinking, effort",
    [
        ("claude-opus-4-7", "high", {"type": "adaptive", "display": "summarized"}, "high"),
        ("claude-opus-4-7", "xhigh", {"type": "adaptive", "display": "summarized"}, "xhigh"),
        ("claude-opus-4-6", "xhigh", {"type": "adaptive", "display": "summarized"}, "high"),
        ("claude-sonnet-4-6", "max", {"type": "adaptive", "display": "summarized"}, "max"),
        ("claude-sonnet-5", "minimal", {"type": "adaptive", "display": "summarized"}, "low"),
        ("claude-opus-5-5", "none", {"type": "disabled"}, None),
        ("claude-sonnet-4-6", "none", {"type": "disabled"}, None),
        ("claude-haiku-4-5", "none", {"type": "disabled"}, None),
        ("claude-fable-5", "none", {"type": "adaptive", "display": "summarized"}, "low"),
        ("claude-mythos-preview", "xhigh", {"type": "adaptive", "display": "summarized"}, "high"),
        ("claude-haiku-4-5", "low", {"type": "enabled", "budget_tokens": 4000}, None),
        ("claude-sonnet-4-5", "medium", {"type": "enabled", "budget_tokens": 8000}, None),
        ("claude-opus-4-5", "max", {"type": "enabled", "budget_tokens": 12000}, None),
        ("claude-haiku-4-5", 5000, {"type": "enabled", "budget_tokens": 5000}, None),
        ("claude-opus-4-6", 500, {"type": "adaptive", "display": "summarized"}, "low"),
        ("claude-sonnet-4-6", 20000, {"type": "adaptive", "display": "summarized"}, "high"),
        ("claude-opus-4-6", 40000, {"type": "adaptive", "display": "summarized"}, "high"),
        ("claude-mythos-preview", 5000, {"type": "adaptive", "display": "summarized"}, "medium"),
        ("claude-opus-4-7", 2000, {"type": "adaptive", "display": "summarized"}, "low"),
        ("claude-opus-4-8", 10000, {"type": "adaptive", "display": "summarized"}, "medium"),
        ("claude-opus-5", 20000, {"type": "adaptive", "display": "summarized"}, "high"),
        ("claude-opus-5", 40000, {"type": "adaptive", "display": "summarized"}, "xhigh"),
        ("claude-fable-5-2", 100000, {"type": "adaptive", "display": "summarized"}, "max"),
        ("some-gateway-model", "medium", {"type": "adaptive", "display": "summarized"}, "medium"),
    ],
)  # fmt: skip
def test_reasoning_mapping_table(model, reasoning, thinking, effort):
    sent = body(make(), "Think", model=model, reasoning=reasoning)
    assert sent["thinking"] == thinking
    assert sent.get("output_config", {}).get("effort") == effort
    assert "temperature" not in sent


def test_no_reasoning_sends_nothing():
    sent = body(make(), "Hi", model="claude-opus-4-7")
    assert "thinking" not in sent and "output_config" not in sent and sent["max_tokens"] == DEFAULT_MAX_TOKENS == 16000


def test_effort_and_json_schema_share_output_config():
    sent = body(make(), "City?", model="claude-opus-4-7", reasoning="low", response_format={"type": "object", "properties": {}})
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object", "properties": {}}}, "effort": "low"}


def test_budget_raises_max_tokens_when_the_caller_set_none_and_refuses_a_conflict(server):
    assert body(make(), "x", model=MODEL, reasoning=20000)["max_tokens"] == 20000 + 4096
    assert body(make(), "x", model=MODEL, reasoning=3000)["max_tokens"] == DEFAULT_MAX_TOKENS
    assert body(make(), "x", model=MODEL, reasoning=3000, max_tokens=4000)["max_tokens"] == 4000
    p = make(server)
    with pytest.raises(ValidationError, match="below max_tokens"):
        p.generate("x", model=MODEL, reasoning=3000, max_tokens=3000)
    with pytest.raises(ValidationError, match="no room for thinking"):
        p.generate("x", model=MODEL, reasoning="low", max_tokens=1024)
    with pytest.raises(ValidationError):
        p.stream("x", model=MODEL, reasoning=8000, max_tokens=2000)
    assert server.requests == []


def test_budgets_never_send_enabled_thinking_to_models_the_sdk_warns_about():
    data = pytest.importorskip("anthropic._data", reason="the anthropic SDK is not installed")
    for model in data.MODELS_TO_WARN_WITH_THINKING_ENABLED:  # SDK 2.17: UserWarning "use adaptive"
        for budget in (1024, 5000, 50000):
            assert body(make(), "x", model=model, reasoning=budget)["thinking"]["type"] == "adaptive"


@pytest.mark.parametrize("model, cap", [("claude-haiku-4-5", 64000), ("claude-opus-4-5", 64000), ("claude-opus-4-1", 32000)])
def test_a_raised_max_tokens_stays_within_the_models_output_limit(server, model, cap):
    sent = body(make(), "x", model=model, reasoning=cap - 2000)
    assert sent["max_tokens"] == cap and sent["thinking"] == {"type": "enabled", "budget_tokens": cap - 2000}
    assert body(make(), "x", model=model, reasoning=cap - 8000)["max_tokens"] == cap - 8000 + 4096
    p = make(server)
    with pytest.raises(ValidationError, match=f"output limit of {model} \\({cap} tokens\\)") as info:
        p.generate("x", model=model, reasoning=cap)
    assert "below" in info.value.hint
    assert server.requests == []
    assert body(make(), "x", model=model, reasoning=cap + 10, max_tokens=cap + 20)["max_tokens"] == cap + 20  # the caller's own value is sent


def test_effort_budget_is_a_share_of_max_tokens():
    assert body(make(), "x", model=MODEL, reasoning="high", max_tokens=2000)["thinking"] == {"type": "enabled", "budget_tokens": 1500}
    assert body(make(), "x", model=MODEL, reasoning="low", max_tokens=2000)["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_a_thinking_provider_option_wins_over_reasoning():
    sent = body(make(), "x", model="claude-opus-4-7", reasoning="high", thinking={"type": "adaptive", "display": "omitted"})
    assert sent["thinking"] == {"type": "adaptive", "display": "omitted"} and sent["output_config"] == {"effort": "high"}


# ------------------------------------------------------------------- caching
def test_cache_true_marks_the_prompt_and_false_sends_nothing():
    assert body(make(), "Hi", model=MODEL, cache=True)["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in body(make(), "Hi", model=MODEL, cache=False)
    assert "cache_control" not in body(make(api_version=LEGACY), "Hi", model=MODEL)


def test_cache_usage_is_reported(server):
    server.add_chat("anthropic", "ok", usage={"input_tokens": 10, "output_tokens": 2, "cache_read_tokens": 100, "cache_write_tokens": 5})
    u = make(server).generate("Hi", model=MODEL, cache=True).usage
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens) == (115, 100, 5)


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "status, code, cls, retryable, hint",
    [
        (429, "contract_spend_limit_reached", QuotaExceededError, False, "contract"),
        (429, "enforced_spend_limit_reached", QuotaExceededError, False, "monthly"),
        (402, "linked_organization_spend_limit_reached", QuotaExceededError, False, "spend limit"),
        (429, "ramp_limit_exceeded", RateLimitError, True, "ramp"),
        (503, "cmek_key_unreachable", ServerError, True, "encryption key"),
        (503, "storage_not_ready", ServerError, True, "retry in a minute"),
        (400, "organization_on_hold", PermissionDeniedError, False, "trust and safety"),
        (400, "tool_name_conflict", InvalidRequestError, False, "rename the tool"),
        (529, "compaction_unavailable", OverloadedError, True, "retry later"),
    ],
)  # fmt: skip
def test_errors_are_classified_by_error_code(status, code, cls, retryable, hint):
    # The message would say otherwise: the code wins over wording and error.type.
    err = anthropic_error_body(status, "Your credit balance is too low", type="invalid_request_error", error_code=code)
    exc = make().parse_error(status, err, "", {})
    assert type(exc) is cls and exc.retryable is retryable
    assert exc.extra["error_code"] == code and hint in exc.hint


def test_image_dimensions_too_large_hint_names_the_limit_and_paths():
    err = anthropic_error_body(400, "image too large", error_code="image_dimensions_too_large",
                               details={"max_side_length_pixels": 8000, "paths": ["messages.0.content.1"]})  # fmt: skip
    exc = make().parse_error(400, err, "", {})
    assert type(exc) is InvalidRequestError and exc.extra["error_code"] == "image_dimensions_too_large"
    assert "8000 px" in exc.hint and "messages.0.content.1" in exc.hint


def test_organization_on_hold_hint_carries_the_appeal_url():
    err = anthropic_error_body(400, "on hold", error_code="organization_on_hold", details={"appeal_url": "https://example.com/appeal"})
    assert "https://example.com/appeal" in make().parse_error(400, err, "", {}).hint


def test_spend_limit_is_not_retried_over_http(server):
    server.add_error(429, body=anthropic_error_body(429, "spend limit", error_code="enforced_spend_limit_reached"))
    with pytest.raises(QuotaExceededError) as info:
        make(server, retry=RetryPolicy(max_retries=2)).generate("Hi", model=MODEL)
    assert info.value.extra["error_code"] == "enforced_spend_limit_reached" and len(server.requests) == 1


def test_unknown_error_code_falls_back_to_type_and_wording():
    err = anthropic_error_body(400, "prompt is too long: 300 tokens > 200 maximum", error_code="brand_new_code")
    exc = make().parse_error(400, err, "", {})
    assert type(exc) is TokenLimitError and exc.extra["error_code"] == "brand_new_code" and exc.limit == 200
    credit = make().parse_error(400, anthropic_error_body(400, "Your credit balance is too low."), "", {})
    assert type(credit) is QuotaExceededError and "error_code" not in credit.extra


def test_temperature_and_top_p_together_gets_a_hint():
    msg = "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    exc = make().parse_error(400, anthropic_error_body(400, msg), "", {})
    assert type(exc) is InvalidRequestError and "only one" in exc.hint


# ------------------------------------------------------- forced tools and thinking
TOOL = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.mark.parametrize(
    "model, reasoning, choice",
    [("claude-haiku-4-5", "high", "required"), ("claude-haiku-4-5", 5000, "get_weather"), ("claude-sonnet-4-6", "low", "required"),
     ("claude-opus-4-7", "high", "get_weather"), ("claude-opus-4-7", 3000, "required")],
)  # fmt: skip
def test_thinking_with_a_forced_tool_is_refused_before_io_naming_both(server, model, reasoning, choice):
    c = client(server)
    with pytest.raises(UnsupportedFeatureError) as info:
        c.complete(f"anthropic/{model}", "Weather?", tools=[TOOL], tool_choice=choice, reasoning=reasoning)
    exc = info.value
    assert exc.extra["option"] == "reasoning" and "tool_choice" in str(exc) and "reasoning" in str(exc)
    with pytest.raises(UnsupportedFeatureError):
        next(iter(c.stream(f"anthropic/{model}", "Weather?", tools=[TOOL], tool_choice=choice, reasoning=reasoning)))
    assert server.requests == []


def test_drop_unsupported_keeps_the_forced_tool_and_leaves_thinking_out(server):
    server.add_chat("anthropic", "", tool_calls=[{"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}])
    c = client(server, drop_unsupported=True)
    r = c.complete(f"anthropic/{MODEL}", "Weather?", tools=[TOOL], tool_choice="required", reasoning="high")
    assert r.dropped_options == ["reasoning"] and r.tool_calls[0].name == "get_weather"
    sent = server.requests[0].json
    assert sent["tool_choice"] == {"type": "any"} and "thinking" not in sent and sent["max_tokens"] == DEFAULT_MAX_TOKENS


@pytest.mark.parametrize(
    "model, reasoning, choice",
    [("claude-opus-4-8", "high", "required"), ("claude-sonnet-5", 20000, "get_weather"), ("claude-fable-5", "none", "required"),
     ("claude-haiku-4-5", "none", "required"), ("claude-haiku-4-5", "high", "auto"), ("claude-opus-4-7", "high", "none")],
)  # fmt: skip
def test_thinking_that_goes_with_the_tool_choice_is_sent(model, reasoning, choice):
    sent = body(make(), "Weather?", model=model, tools=[TOOL], tool_choice=choice, reasoning=reasoning)
    assert "thinking" in sent and "tool_choice" in sent


def test_a_thinking_provider_option_with_a_forced_tool_is_refused_by_its_name():
    with pytest.raises(UnsupportedFeatureError) as info:
        make().make_request("x", model="claude-opus-4-8", tools=[TOOL], tool_choice="required",
                            thinking={"type": "enabled", "budget_tokens": 2000})  # fmt: skip
    assert info.value.extra["option"] == "thinking"
    off = body(make(), "x", model="claude-opus-4-7", tools=[TOOL], tool_choice="required", reasoning="high", thinking={"type": "disabled"})
    assert off["thinking"] == {"type": "disabled"} and off["tool_choice"] == {"type": "any"}


def test_the_runtime_forced_tool_400_gets_a_hint():
    exc = make().parse_error(400, anthropic_error_body(400, "Thinking may not be enabled when tool_choice forces tool use."), "", {})
    assert type(exc) is InvalidRequestError and "reasoning='none'" in exc.hint and "tool_choice='auto'" in exc.hint


# -------------------------------------------------------------------- models
def test_models_carry_lifecycle_data(server):
    server.add_models("anthropic", [
        {"id": "claude-haiku-4-5", "lifecycle": "active", "deprecated_at": None, "retires_at": None, "max_input_tokens": 200000},
        {"id": "claude-opus-4-5", "lifecycle": "deprecated", "deprecated_at": "2026-07-22T00:00:00Z", "retires_at": "2027-01-22T00:00:00Z"},
        {"id": "claude-3-5-haiku-20241022", "lifecycle": "retired", "deprecated_at": "2025-10-01T18:00:00-08:00", "retires_at": "2026-02-19"},
        {"id": "claude-old-listing"},
    ])  # fmt: skip
    models = {m.id: m for m in make(server).list_models()}
    active, deprecated, retired, old = (models[k] for k in ("claude-haiku-4-5", "claude-opus-4-5", "claude-3-5-haiku-20241022", "claude-old-listing"))
    assert (active.deprecated, active.deprecation_date, active.retirement_date, active.context_length) == (False, None, None, 200000)
    assert (deprecated.deprecated, deprecated.deprecation_date, deprecated.retirement_date) == (True, "2026-07-22", "2027-01-22")
    assert (retired.deprecated, retired.deprecation_date, retired.retirement_date) == (True, "2025-10-02", "2026-02-19")
    assert (old.deprecated, old.deprecation_date, old.retirement_date) == (None, None, None)


def test_default_model_is_current_and_cheap(server):
    server.add_chat("anthropic", "ok")
    assert AnthropicProvider.default_model == "claude-haiku-4-5"
    make(server).generate("Hi")
    assert server.last_request.json["model"] == "claude-haiku-4-5"


def test_plan_reasoning_is_pure():
    plan = plan_reasoning("claude-haiku-4-5", "high", None, 16000)
    assert plan == ({"type": "enabled", "budget_tokens": 12000}, None, 16000)


def test_api_version_from_the_config_file(monkeypatch, tmp_path, server):
    path = tmp_path / "modelprov.ini"
    path.write_text(f"[provider:anthropic]\napi_key = k\nbase_url = {server.url}\napi_version = {LEGACY}\n")
    path.chmod(0o600)
    monkeypatch.setenv("MODELPROV_CONFIG", str(path))
    server.add_chat("anthropic", "ok")
    assert Client().complete(f"anthropic/{MODEL}", "Hi", top_p=0.5).text == "ok"
    assert server.last_request.headers["anthropic-version"] == LEGACY and server.last_request.json["top_p"] == 0.5
