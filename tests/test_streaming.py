"""Tests for modelprov.streaming: SSEParser, NDJSONParser, loads_json."""

import json
import pickle
from typing import List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelprov.exceptions import ResponseError
from modelprov.streaming import NDJSONParser, SSEEvent, SSEParser

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def parse(*chunks: bytes, parser: Optional[SSEParser] = None) -> List[SSEEvent]:
    p = parser if parser is not None else SSEParser()
    out: List[SSEEvent] = []
    for chunk in chunks:
        out.extend(p.feed(chunk))
    out.extend(p.close())
    return out


def one_byte_chunks(data: bytes) -> List[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def datas(events: List[SSEEvent]) -> List[str]:
    return [e.data for e in events]


def ev(data: str, event: str = "message", id: str = "", retry: Optional[int] = None) -> SSEEvent:
    return SSEEvent(event=event, data=data, id=id, retry=retry)


# -- SSEEvent -------------------------------------------------------------------


def test_event_defaults_and_fields():
    e = SSEEvent(data="x")
    assert (e.event, e.data, e.id, e.retry) == ("message", "x", "", None)
    assert SSEEvent() == SSEEvent("message", "", "", None)
    assert SSEEvent(event="ping", data="{}", id="7", retry=10).retry == 10


def test_event_is_frozen_hashable_and_picklable():
    e = SSEEvent(event="ping", data="{}")
    with pytest.raises(AttributeError):
        e.data = "y"  # type: ignore[misc]
    assert hash(e) == hash(SSEEvent(event="ping", data="{}"))
    assert pickle.loads(pickle.dumps(e)) == e
    assert e._replace(data="z").data == "z"
    assert repr(e) == "SSEEvent(event='ping', data='{}', id='', retry=None)"


# -- SSE basics -----------------------------------------------------------------


def test_openai_style_stream():
    body = b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    assert parse(body) == [ev('{"a":1}'), ev('{"b":2}'), ev("[DONE]")]


def test_anthropic_style_stream():
    body = b"event: message_start\ndata: {}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: message_stop\ndata: {}\n\n"
    events = parse(body)
    assert [e.event for e in events] == ["message_start", "ping", "message_stop"]
    assert events[1].data == '{"type": "ping"}'


def test_feed_returns_events_as_soon_as_complete():
    p = SSEParser()
    assert p.feed(b"data: a\n") == []
    assert p.feed(b"\n") == [ev("a")]
    assert p.feed(b"data: b\n\ndata: c") == [ev("b")]
    assert p.feed(b"\n\n") == [ev("c")]
    assert p.close() == []


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"])
def test_each_line_terminator(eol):
    body = f"event: e{eol}data: a{eol}data: b{eol}{eol}data: c{eol}{eol}".encode()
    assert parse(body) == [ev("a\nb", event="e"), ev("c")]
    assert parse(*one_byte_chunks(body)) == [ev("a\nb", event="e"), ev("c")]


def test_mixed_terminators_in_one_stream():
    body = b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r"
    assert parse(body) == [ev("a\nb\nc"), ev("d")]


def test_crlf_split_across_chunks_is_one_line_ending():
    # requests.iter_lines turns this into an extra blank line (WIRE.md section 9).
    events = parse(b"event: message_start\r", b"\ndata: {}\r\n\r\n")
    assert events == [ev("{}", event="message_start")]


def test_crlf_split_between_blank_line_chunks():
    assert parse(b"data: a\r\n\r", b"\ndata: b\r\n\r\n") == [ev("a"), ev("b")]
    assert parse(b"data: a\r", b"\n", b"\r", b"\n") == [ev("a")]


def test_lone_cr_at_chunk_end_ends_the_line_immediately():
    p = SSEParser()
    assert p.feed(b"data: a\r") == []
    assert p.feed(b"\r") == [ev("a")]  # CR CR: line end + blank line, no wait for more bytes
    assert p.feed(b"data: b\r\r") == [ev("b")]
    assert p.feed(b"\n") == []  # LF after CR pairs with it
    assert p.feed(b"data: c\n\n") == [ev("c")]


def test_cr_followed_by_non_lf_in_next_chunk():
    assert parse(b"data: a\r", b"data: b\r\r") == [ev("a\nb")]


def test_comment_lines_are_counted_not_dispatched():
    p = SSEParser()
    body = b": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: {}\n\n:\n\n"
    assert parse(body, parser=p) == [ev("{}")]
    assert p.comments == 3


def test_comment_inside_event_block():
    p = SSEParser()
    assert parse(b"data: a\n: keep-alive\ndata: b\n\n", parser=p) == [ev("a\nb")]
    assert p.comments == 1


def test_multi_line_data_joined_with_newline():
    assert parse(b"data: line1\ndata: line2\ndata: line3\n\n") == [ev("line1\nline2\nline3")]


@pytest.mark.parametrize(
    "line, data",
    [
        (b"data:x", "x"),
        (b"data: x", "x"),
        (b"data:  x", " x"),
        (b"data:\tx", "\tx"),
        (b"data: x ", "x "),
        (b"data: a:b: c", "a:b: c"),
        (b"data:", ""),
        (b"data: ", ""),
        (b"data", ""),
    ],
)
def test_field_value_parsing(line, data):
    assert parse(line + b"\n\n") == [ev(data)]


def test_bare_data_lines_append_empty_lines():
    assert parse(b"data\ndata\n\n") == [ev("\n")]
    assert parse(b"data\ndata: x\n\n") == [ev("\nx")]


def test_only_trailing_newline_is_removed():
    assert parse(b"data: a\ndata\n\n") == [ev("a\n")]


def test_field_without_colon_is_name_with_empty_value():
    assert parse(b"event\ndata: x\n\n") == [ev("x", event="message")]
    assert parse(b"id: 5\ndata: a\n\nid\ndata: b\n\n") == [ev("a", id="5"), ev("b", id="")]


def test_field_names_are_case_sensitive_and_unknown_ignored():
    assert parse(b"Data: x\nDATA: y\nfoo: bar\ndata: z\n\n") == [ev("z")]


def test_event_only_block_yields_nothing_and_resets_type():
    assert parse(b"event: ping\n\ndata: x\n\n") == [ev("x")]
    assert parse(b"event: a\nid: 1\nretry: 5\n\n") == []


def test_event_type_applies_to_its_block_only():
    assert parse(b"event: a\ndata: 1\n\ndata: 2\n\n") == [ev("1", event="a"), ev("2")]
    assert parse(b"event: a\nevent: b\ndata: 1\n\n") == [ev("1", event="b")]


def test_last_event_id_persists_and_nul_is_ignored():
    p = SSEParser()
    body = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\x003\ndata: c\n\nid: 4\ndata: d\n\n"
    assert parse(body, parser=p) == [ev("a", id="1"), ev("b", id="1"), ev("c", id="1"), ev("d", id="4")]
    assert p.last_event_id == "4"


def test_id_line_after_data_in_same_block_applies():
    assert parse(b"data: a\nid: 9\n\n") == [ev("a", id="9")]


def test_fast_path_uses_persisting_id():
    events = parse(b"id: 7\ndata: a\n\n", b"data: b\n\ndata: c\n\n", b"data: d\n\n")
    assert [e.id for e in events] == ["7", "7", "7", "7"]


@pytest.mark.parametrize("value", ["", "1.5", "-1", "10a", " 10 ", "\u0661\u0662", "\u00b2", "1e3"])
def test_retry_ignored_unless_ascii_digits(value):
    p = SSEParser()
    events = parse(f"retry:{value}\ndata: x\n\n".encode(), parser=p)
    assert events == [ev("x")]
    assert p.retry is None


def test_retry_digits_sets_reconnection_time():
    p = SSEParser()
    events = parse(b"retry: 3000\ndata: x\n\ndata: y\n\nretry: 0012\n\n", parser=p)
    assert events == [ev("x", retry=3000), ev("y")]
    assert p.retry == 12


def test_huge_retry_value_does_not_raise():
    p = SSEParser()
    assert parse(b"retry: " + b"9" * 5000 + b"\ndata: x\n\n", parser=p) == [ev("x")]


def test_unterminated_last_event_is_discarded():
    assert parse(b"data: a\n\ndata: b\n") == [ev("a")]
    assert parse(b"data: a\n\ndata: b") == [ev("a")]
    assert parse(b"data: a\r\n\r\ndata: b\r\n") == [ev("a")]


def test_close_applies_complete_lines_of_partial_block():
    p = SSEParser()
    assert parse(b"data: a\n\n: ping\nid: 3\nerror: {\"e\":1}\nretry: 5\ndata: lost\n", parser=p) == [ev("a")]
    assert (p.comments, p.last_event_id, p.retry, p.error_fields) == (1, "3", 5, ['{"e":1}'])


def test_unterminated_line_at_close_is_not_processed():
    p = SSEParser()
    parse(b"id: 3", parser=p)
    assert p.last_event_id == ""


def test_close_is_idempotent_and_feed_after_close_raises():
    p = SSEParser()
    assert p.close() == []
    assert p.close() == []
    with pytest.raises(ValueError):
        p.feed(b"data: x\n\n")


def test_empty_chunks_are_harmless():
    p = SSEParser()
    assert p.feed(b"") == []
    assert p.feed(b"data: x\n") == []
    assert p.feed(b"") == []
    assert p.feed(b"\n") == [ev("x")]


def test_bytearray_chunks():
    assert parse(bytearray(b"data: a\n\n"), bytearray(b"data: b\n"), bytearray(b"\n")) == [ev("a"), ev("b")]


def test_error_fields_collected_not_dispatched():
    p = SSEParser()
    body = b'data: {"x":1}\n\nerror: {"code":500,"message":"boom"}\n\n'
    assert parse(body, parser=p) == [ev('{"x":1}')]
    assert p.error_fields == ['{"code":500,"message":"boom"}']


def test_error_field_next_to_data_is_collected_and_data_dispatched():
    p = SSEParser()
    assert parse(b"error\nerror:x\ndata: d\n\n", parser=p) == [ev("d")]
    assert p.error_fields == ["", "x"]


# -- BOM ------------------------------------------------------------------------


def test_leading_bom_stripped():
    assert parse(b"\xef\xbb\xbfdata: x\n\n") == [ev("x")]


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_leading_bom_split_across_chunks(cut):
    body = b"\xef\xbb\xbfdata: x\n\n"
    assert parse(body[:cut], body[cut:]) == [ev("x")]
    assert parse(*one_byte_chunks(body)) == [ev("x")]


def test_only_one_bom_stripped_and_only_at_start():
    # A second BOM is part of the first field name, so the line is an unknown field.
    assert parse(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n") == [ev("y")]
    assert parse(b"data: \xef\xbb\xbfx\n\n") == [ev("\ufeffx")]
    assert parse(b"data: a\n\n", b"\xef\xbb\xbfdata: b\n\n") == [ev("a")]


def test_partial_bom_is_content():
    assert parse(b"\xef\xbbdata: x\n\ndata: y\n\n") == [ev("y")]
    assert parse(b"\xef") == []


# -- UTF-8 ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["\u00e9", "\u6f22", "\U0001f642", "a\u00e9\u6f22\U0001f642z"])
def test_utf8_split_at_every_byte_offset(text):
    body = f"data: {text}\n\ndata: {text}{text}\n\n".encode()
    expected = [ev(text), ev(text + text)]
    for cut in range(len(body) + 1):
        assert parse(body[:cut], body[cut:]) == expected, cut
    assert parse(*one_byte_chunks(body)) == expected


def test_utf8_in_event_name_and_id():
    body = "event: \u00e9v\u00e9nement\nid: \u6f22\ndata: x\n\n".encode()
    assert parse(*one_byte_chunks(body)) == [ev("x", event="\u00e9v\u00e9nement", id="\u6f22")]


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"data: \xff\n\n", ["\ufffd"]),
        (b"data: a\xe6\xbcb\n\n", ["a\ufffdb"]),
        (b"data: \xe6\xbc\n\n", ["\ufffd"]),
        (b"data: \xed\xa0\x80\n\n", ["\ufffd\ufffd\ufffd"]),  # encoded surrogate
        (b"data: ok\n\ndata: \xc3(\n\n", ["ok", "\ufffd("]),
        (b"data: \xc3\xa9\n\ndata: \xff\n\n", ["\u00e9", "\ufffd"]),
        (b"event: \xff\ndata: x\n\n", ["x"]),
        (b"data: x\xff\ndata: y\n\n", ["x\ufffd\ny"]),
    ],
)
def test_invalid_utf8_becomes_replacement_char(body, expected):
    assert datas(parse(body)) == expected
    assert datas(parse(*one_byte_chunks(body))) == expected


def test_truncated_code_point_before_newline_is_replaced_once():
    assert datas(parse(b"data: \xf0\x9f\x99\ndata: x\n\n")) == ["\ufffd\nx"]


# -- fast path / slow path agreement ----------------------------------------------


def test_fast_path_falls_back_for_irregular_regions():
    body = b"data: a\n\ndata: b\ndata: c\n\n: c\n\ndata: d\n\n\n\ndata:e\n\nevent: x\ndata: f\n\n"
    expected = [ev("a"), ev("b\nc"), ev("d"), ev("e"), ev("f", event="x")]
    assert parse(body) == expected
    assert parse(*one_byte_chunks(body)) == expected


@pytest.mark.parametrize("extra", [b"\n", b"\n\n", b"\r", b"\r\n\r\n"])
def test_extra_blank_lines_after_event(extra):
    assert parse(b"data: x\n\n" + extra) == [ev("x")]
    assert parse(b"data: x\n\n" + extra + b"data: y\n\n" + extra) == [ev("x"), ev("y")]


def test_anthropic_fast_path_falls_back_on_irregular_blocks():
    body = b"event: a\n\nevent: b\ndata: 1\ndata: 2\n\n"
    assert parse(body) == [ev("1\n2", event="b")]
    body = b"event: a\ndata: 1\n\nevent: \ndata: 2\n\nevent: c\nid: 4\n\n"
    assert parse(body) == [ev("1", event="a"), ev("2")]
    body = b"event: a\nid: 5\n\nevent: b\ndata: 1\ndata: 2\n\nevent: c\ndata: 3\n\n"
    assert parse(body) == [ev("1\n2", event="b", id="5"), ev("3", event="c", id="5")]


def test_large_event_across_many_chunks():
    payload = "x" * 100_000
    body = f"data: {payload}\n\n".encode()
    chunks = [body[i : i + 997] for i in range(0, len(body), 997)]
    assert parse(*chunks) == [ev(payload)]


# -- SSE property tests -------------------------------------------------------------

_line_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12)
_event_st = st.fixed_dictionaries(
    {
        "event": st.one_of(st.none(), _line_text),
        "data": st.lists(_line_text, min_size=0, max_size=3),
        "id": st.one_of(st.none(), _line_text.filter(lambda s: "\x00" not in s)),
        "comment": st.one_of(st.none(), _line_text),
    }
)
_eols = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def sse_streams(draw):
    """(body bytes, expected events) for a random stream with random line ends."""
    blocks = draw(st.lists(_event_st, max_size=6))
    lines: List[str] = []
    expected: List[SSEEvent] = []
    last_id = ""
    for block in blocks:
        if block["comment"] is not None:
            lines.append(":" + block["comment"])
        if block["event"] is not None:
            lines.append("event: " + block["event"])
        if block["id"] is not None:
            lines.append("id: " + block["id"])
            last_id = block["id"]
        lines.extend("data: " + d for d in block["data"])
        lines.append("")
        if block["data"]:
            expected.append(ev("\n".join(block["data"]), event=block["event"] or "message", id=last_id))
    if draw(st.booleans()):
        lines.append("data: unterminated")  # never dispatched
    out = []
    prev = ""
    for line in lines:
        eol = draw(_eols)
        if prev == "\r" and not line and eol == "\n":
            eol = "\r\n"  # a lone LF right after a CR would merge into one CRLF
        out.append(line + eol)
        prev = eol
    return "".join(out).encode("utf-8"), expected


@st.composite
def splits(draw, data: bytes):
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0] + cuts + [len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@PROPERTY
@given(st.data())
def test_property_sse_any_split_matches_model(data):
    body, expected = data.draw(sse_streams())
    assert parse(body) == expected
    assert parse(*data.draw(splits(body))) == expected
    assert parse(*one_byte_chunks(body)) == expected


@PROPERTY
@given(st.data())
def test_property_sse_arbitrary_bytes_never_raise_and_chunking_is_invisible(data):
    alphabet = st.sampled_from([b"data:", b"data: ", b"event: e", b"id: 1", b"retry: 5", b":", b"\r", b"\n", b"\r\n", b" ", b"x",
                                b"\xef\xbb\xbf", b"\xc3", b"\xa9", b"\xff", b"\xf0\x9f\x99\x82", b"error: e", b"\x00"])
    body = b"".join(data.draw(st.lists(alphabet, max_size=40)))
    p1, p2 = SSEParser(), SSEParser()
    whole = parse(body, parser=p1)
    pieces = parse(*data.draw(splits(body)), parser=p2)
    assert whole == pieces
    assert (p1.comments, p1.error_fields, p1.last_event_id, p1.retry) == (p2.comments, p2.error_fields, p2.last_event_id, p2.retry)
    assert parse(*one_byte_chunks(body)) == whole


# -- NDJSON -----------------------------------------------------------------------


def nd(*chunks: bytes, provider: Optional[str] = None) -> list:
    p = NDJSONParser(provider=provider)
    out = []
    for chunk in chunks:
        out.extend(p.feed(chunk))
    out.extend(p.close())
    return out


def test_ndjson_basic_and_incremental():
    p = NDJSONParser()
    assert p.feed(b'{"a":1}\n{"b"') == [{"a": 1}]
    assert p.feed(b':2}\n') == [{"b": 2}]
    assert p.feed(b"[1,2]") == []
    assert p.close() == [[1, 2]]


def test_ndjson_crlf_blank_and_whitespace_lines():
    assert nd(b'{"a":1}\r\n\r\n\n   \n\t\r\n{"b":2}\r\n') == [{"a": 1}, {"b": 2}]


def test_ndjson_final_line_without_newline_and_blank_tail():
    assert nd(b'{"a":1}\n{"done":true}') == [{"a": 1}, {"done": True}]
    assert nd(b'{"a":1}\n  \r') == [{"a": 1}]
    assert nd(b"") == []


def test_ndjson_scalars_and_unicode():
    body = '1\n"x"\nnull\n{"t":"\u00e9\u6f22\U0001f642"}\n'.encode()
    assert nd(*one_byte_chunks(body)) == [1, "x", None, {"t": "\u00e9\u6f22\U0001f642"}]


def test_ndjson_invalid_utf8_is_replaced():
    assert nd(b'{"t":"a\xffb"}\n') == [{"t": "a\ufffdb"}]


def test_ndjson_leading_bom():
    assert nd(b'\xef\xbb\xbf{"a":1}\n', b'{"b":2}\n') == [{"a": 1}, {"b": 2}]


def test_ndjson_malformed_line_reports_line_number_and_excerpt():
    p = NDJSONParser(provider="ollama")
    assert p.feed(b'{"a":1}\n\n') == [{"a": 1}]
    with pytest.raises(ResponseError) as info:
        p.feed(b'{"b":2}\n{"c": nope}\n')
    err = info.value
    assert err.extra["line"] == 4
    assert "line 4" in str(err)
    assert '{"c": nope}' in str(err)
    assert err.provider == "ollama"


def test_ndjson_excerpt_is_short():
    long_line = b'{"k": "' + b"v" * 500 + b'" oops}'
    with pytest.raises(ResponseError) as info:
        nd(b"{}\n" + long_line + b"\n")
    assert info.value.extra["line"] == 2
    assert len(info.value.message) < 200
    assert "..." in info.value.message


def test_ndjson_malformed_final_line_at_close():
    p = NDJSONParser()
    p.feed(b"{}\n{}\n")
    p.feed(b"{oops")
    with pytest.raises(ResponseError) as info:
        p.close()
    assert info.value.extra["line"] == 3


def test_ndjson_feed_after_close_raises():
    p = NDJSONParser()
    p.close()
    with pytest.raises(ValueError):
        p.feed(b"{}\n")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@PROPERTY
@given(st.data())
def test_property_ndjson_any_split_matches(data):
    values = data.draw(st.lists(_json_values, max_size=8))
    parts = []
    for value in values:
        parts.append(json.dumps(value, ensure_ascii=data.draw(st.booleans())))
        parts.append(data.draw(st.sampled_from(["\n", "\r\n", "\n\n", "\r\n  \n"])))
    if parts and data.draw(st.booleans()):
        parts.pop()  # no newline after the last value
    body = "".join(parts).encode("utf-8")
    assert nd(body) == values
    assert nd(*data.draw(splits(body))) == values
    assert nd(*one_byte_chunks(body)) == values


# --- loads_json: json.loads semantics at a lower per-call cost -------------------------------

@pytest.mark.parametrize(
    "text",
    ['{"a": [1, 2.5, "x\\u00e9"], "b": null}', "[]", '"s"', "1", "NaN", ' {"lead": 1}', '{"trail": 1} ', "[1]\r",
     '{"a": 1}{"b": 2}', "", "   ", "{bad", '{"a": }', "[1,]", "nul"],
)
def test_loads_json_matches_json_loads(text):
    import json

    from modelprov.streaming import loads_json

    try:
        expected = json.loads(text)
    except ValueError as exc:
        with pytest.raises(ValueError) as info:
            loads_json(text)
        assert type(info.value) is type(exc) and str(info.value) == str(exc)
    else:
        got = loads_json(text)
        assert got == expected or (got != got and expected != expected)  # NaN
