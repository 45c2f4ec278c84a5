"""The OpenAI-compatible face, spoken to by the official ``openai`` client against ``penguin serve``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from penguin_server import PenguinServer


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PenguinServer]:
    """A server with an API key: the face takes the key as the OpenAI client sends it."""
    proc = PenguinServer(tmp_path_factory.mktemp("openai-face"), env={"PENGUIN_API_KEY": "sk-penguin"}).start()
    yield proc
    proc.stop()


@pytest.fixture
def client(keyed_server: PenguinServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{keyed_server.url}/v1", api_key="sk-penguin", max_retries=0) as c:
        yield c


def history(server: PenguinServer, conversation_id: str) -> list[tuple[str, str]]:
    reply = httpx.get(f"{server.url}/api/v1/conversations/{conversation_id}/history",
                      headers={"Authorization": "Bearer sk-penguin"})
    assert reply.status_code == 200, reply.text
    return [(m["role"], m["content"]) for m in reply.json()["messages"]]


def test_a_two_turn_conversation_keeps_penguins_history(client: openai.OpenAI, keyed_server: PenguinServer) -> None:
    first = client.chat.completions.create(
        model="oa-support", messages=[{"role": "system", "content": "ignored"},
                                      {"role": "user", "content": "my name is Ada"}])
    assert first.choices[0].message.content == "my name is Ada"  # scripted:echo
    assert first.choices[0].finish_reason == "stop" and first.object == "chat.completion"
    assert first.usage is not None and first.usage.total_tokens == first.usage.prompt_tokens + \
        first.usage.completion_tokens > 0
    conversation_id = first.model_extra["penguin"]["conversation_id"]  # type: ignore[index]
    # The client resends the transcript, as OpenAI clients do: only the last user message is a turn.
    second = client.chat.completions.create(
        model="oa-support", messages=[{"role": "user", "content": "my name is Ada"},
                                      {"role": "assistant", "content": "my name is Ada"},
                                      {"role": "user", "content": [{"type": "text", "text": "what is it?"}]}])
    assert second.choices[0].message.content == "what is it?"
    assert second.model_extra["penguin"]["conversation_id"] == conversation_id  # type: ignore[index]
    assert history(keyed_server, conversation_id) == [
        ("user", "my name is Ada"), ("assistant", "my name is Ada"),
        ("user", "what is it?"), ("assistant", "what is it?"),
    ]


def test_streaming_two_turns_in_a_chosen_conversation(client: openai.OpenAI, keyed_server: PenguinServer) -> None:
    auth = {"Authorization": "Bearer sk-penguin"}
    opening = client.chat.completions.create(model="oa-stream", messages=[{"role": "user", "content": "opening"}])
    main_id = opening.model_extra["penguin"]["conversation_id"]  # type: ignore[index]
    checkpoint = httpx.post(f"{keyed_server.url}/api/v1/conversations/{main_id}/checkpoints",
                            json={"name": "fork"}, headers=auth).json()
    branch = httpx.post(f"{keyed_server.url}/api/v1/checkpoints/{checkpoint['id']}/branch", headers=auth)
    assert branch.status_code == 201, branch.text
    conversation_id = branch.json()["id"]
    texts = []
    for text in ("first streamed turn", "second streamed turn"):
        chunks = list(client.chat.completions.create(
            model=f"oa-stream/{conversation_id}", messages=[{"role": "user", "content": text}], stream=True,
            stream_options={"include_usage": True}))
        assert chunks[0].choices[0].delta.role == "assistant"
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
        texts.append("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
    assert texts == ["first streamed turn", "second streamed turn"]
    assert [m for m in history(keyed_server, conversation_id) if m[0] == "user"] == [
        ("user", "opening"), ("user", "first streamed turn"), ("user", "second streamed turn")]
    assert [m for m in history(keyed_server, main_id) if m[0] == "user"] == [("user", "opening")]


def test_models_lists_one_model_per_agent(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="oa-listed", messages=[{"role": "user", "content": "hi"}])
    ids = [m.id for m in client.models.list()]
    assert "oa-listed" in ids and "default" in ids
    assert client.models.retrieve("oa-listed").owned_by == "penguin"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("nobody-by-that-name")
    assert missing.value.code == "agent-not-found"


def test_errors_come_back_in_openais_shape(client: openai.OpenAI, keyed_server: PenguinServer) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="oa-support/conv_nope", messages=[{"role": "user", "content": "x"}])
    assert unknown.value.code == "conversation-not-found"
    assert unknown.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(openai.UnprocessableEntityError) as bad_id:
        client.chat.completions.create(model="bad agent!", messages=[{"role": "user", "content": "x"}])
    assert bad_id.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.UnprocessableEntityError) as last_not_user:
        client.chat.completions.create(model="oa-support", messages=[{"role": "assistant", "content": "x"}])
    assert "last message must be the user's" in last_not_user.value.message
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="oa-support", messages=[])
    httpx.post(f"{keyed_server.url}/api/v1/agents", json={"agent_id": "oa-broken", "model": "scripted:error"},
               headers={"Authorization": "Bearer sk-penguin"})
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="oa-broken", messages=[{"role": "user", "content": "x"}])
    assert failed.value.status_code == 502 and failed.value.code == "model-error"
    # Once the stream has started, a failure arrives in it as OpenAI sends one: an ``error`` event.
    with pytest.raises(openai.APIError) as streamed_failure:
        list(client.chat.completions.create(model="oa-broken", messages=[{"role": "user", "content": "x"}],
                                            stream=True))
    assert "scripted failure" in streamed_failure.value.message
    assert streamed_failure.value.body["code"] == "model-error"  # type: ignore[index]


def test_raw_bad_bodies_and_a_missing_key(keyed_server: PenguinServer) -> None:
    auth = {"Authorization": "Bearer sk-penguin"}
    url = f"{keyed_server.url}/v1/chat/completions"
    malformed = httpx.post(url, content=b"{not json", headers={**auth, "content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed-json"
    missing = httpx.post(url, json={"messages": [{"role": "user", "content": "x"}]}, headers=auth)
    assert missing.status_code == 422 and missing.json()["error"]["param"] == "model"
    wrong_type = httpx.post(url, json={"model": "oa-support", "messages": "hello"}, headers=auth)
    assert wrong_type.status_code == 422 and wrong_type.json()["error"]["param"] == "messages"
    huge = httpx.post(url, content=b"x" * 2_000_000, headers={**auth, "content-type": "application/json"})
    assert huge.status_code == 413
    assert httpx.post(url, json={"model": "oa-support", "messages": []}).status_code == 401
