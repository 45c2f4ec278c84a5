"""The shared HTTP plumbing of the wire clients: retry timing, error bodies, SSE framing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from multidict import CIMultiDict

from penguin.http_session import env_proxy
from penguin.models._http import RetryPolicy, error_message, missing_key_detail, retry_after
from penguin.sse import body_lines, sse_events


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=10, backoff=0.25, cap=8.0)

    for retry in range(10):
        ceiling = min(8.0, 0.25 * 2**retry)
        assert ceiling / 2 <= policy.delay(retry) <= ceiling


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=3)

    assert policy.delay(0, retry_after=3.0) == 3.0
    assert policy.delay(0, retry_after=120.0) == 8.0
    assert policy.delay(2, retry_after=-5.0) == 0.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_header_forms(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(CIMultiDict(headers)) == seconds


def test_retry_after_http_date() -> None:
    wait = retry_after(CIMultiDict({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}))

    assert wait is not None and wait < 0  # in the past: the policy clamps it to no wait


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "bad key", "type": "auth"}}', "bad key"),
        (b'{"type": "error", "error": {"type": "x", "message": "overloaded"}}', "overloaded"),
        (b'{"error": "model not found"}', "model not found"),
        (b'{"object": "error", "message": "too long"}', "too long"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (b"", "empty response body"),
    ],
)
def test_error_message_from_every_provider_shape(body: bytes, message: str) -> None:
    assert error_message(body) == message


def test_missing_key_only_matters_for_the_public_host() -> None:
    detail = missing_key_detail(
        "https://api.openai.com/v1", None, public_host="api.openai.com", env_prefix="OPENAI"
    )

    assert detail == (
        "no API key for api.openai.com: set the OPENAI_API_KEY environment variable, or set "
        "OPENAI_BASE_URL to a compatible server that needs no key"
    )
    assert (
        missing_key_detail("http://127.0.0.1:8000/v1", None, public_host="api.openai.com", env_prefix="X")
        is None
    )
    assert (
        missing_key_detail("https://api.openai.com/v1", "sk", public_host="api.openai.com", env_prefix="X")
        is None
    )


async def test_sse_framing() -> None:
    async def lines() -> AsyncIterator[str]:
        for line in [
            ": keep-alive",
            "",
            "event: a",
            "data: one",
            "data: two",
            "",
            "data:{}",
            "id: 3",
            "",
            "data: tail",
        ]:
            yield line

    assert [item async for item in sse_events(lines())] == [("a", "one\ntwo"), ("", "{}"), ("", "tail")]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize(
    "parts",
    [
        (b"a\nb\r\nc\rd\n",),
        (b"a\r", b"\nb\r\n", b"c\r", b"d\n"),
        (b"a", b"\n", b"b\r", b"\n", b"c", b"\rd"),
    ],
)
async def test_body_lines_splits_every_line_ending_across_chunks(parts: tuple[bytes, ...]) -> None:
    assert [line async for line in body_lines(_chunks(*parts))] == ["a", "b", "c", "d"]


async def test_body_lines_keeps_blank_lines_and_split_utf8() -> None:
    text = "data: caf\u00e9 \u2028ok\n\ndata: x\n".encode()
    cut = text.index(b"\xc3") + 1  # split inside the two bytes of "é"
    lines = [line async for line in body_lines(_chunks(text[:cut], text[cut:]))]
    assert lines == ["data: caf\u00e9 \u2028ok", "", "data: x"]


def test_the_environment_proxy_is_used_unless_no_proxy_names_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert env_proxy("https://api.openai.com/v1") is None

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,gpu-box.lan")
    assert env_proxy("https://api.openai.com/v1") == "http://proxy.internal:3128"
    assert env_proxy("https://gpu-box.lan/v1") is None
    assert env_proxy("http://api.openai.com/v1") is None  # only HTTPS_PROXY is set
