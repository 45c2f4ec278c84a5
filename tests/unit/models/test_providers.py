"""Named providers: two OpenAI-compatible endpoints side by side, from penguin.toml and over REST."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from fake_servers import FakeServer, json_reply

from penguin import PenguinCore
from penguin.api import create_app
from penguin.config import Settings
from penguin.errors import UnknownSetting


def completion(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


@pytest.fixture
async def second() -> AsyncIterator[FakeServer]:
    fake = FakeServer()
    await fake.start()
    yield fake
    await fake.stop()


async def test_two_endpoints_from_the_config_file_serve_their_own_agents(
    tmp_path: Path, server: FakeServer, second: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "penguin.toml").write_text(f"""
[providers.vllm]
base_url = "{server.url}/v1"

[providers.router]
base_url = "{second.url}/v1"
api_key_env = "ROUTER_TEST_KEY"
headers = {{ "HTTP-Referer" = "https://example.org", "X-Api-Token" = "hidden" }}
""")
    monkeypatch.setenv("PENGUIN_CONFIG", str(tmp_path / "penguin.toml"))
    monkeypatch.setenv("ROUTER_TEST_KEY", "sk-router")
    server.reply(json_reply(completion("from vllm")))
    second.reply(json_reply(completion("from the router")))
    async with PenguinCore(Settings(data_dir=tmp_path / "data", model="scripted:echo")) as core:
        await core.create_agent("local-one", model="vllm:llama-3.1-8b")
        await core.create_agent("routed", model="router:meta-llama/llama-3.1-70b")
        assert (await core.chat("hi", agent_id="local-one")).text == "from vllm"
        assert (await core.chat("hi", agent_id="routed")).text == "from the router"
        listed = {p.name: p.to_dict() for p in core.list_providers()}
    assert server.requests[0].json()["model"] == "llama-3.1-8b"
    assert "authorization" not in server.requests[0].headers
    sent = second.requests[0]
    assert sent.json()["model"] == "meta-llama/llama-3.1-70b"
    assert sent.headers["authorization"] == "Bearer sk-router"
    assert sent.headers["http-referer"] == "https://example.org"
    assert listed["router"] == {
        "name": "router", "kind": "openai", "base_url": f"{second.url}/v1", "api_key_env": "ROUTER_TEST_KEY",
        "key_set": True, "headers": {"HTTP-Referer": "https://example.org", "X-Api-Token": "***"},
        "source": "config",
    }


def test_built_in_and_malformed_names_are_refused_in_settings(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="built-in provider"):
        Settings(data_dir=tmp_path, providers={"openai": {"base_url": "http://127.0.0.1:1/v1"}})
    with pytest.raises(pydantic.ValidationError, match="invalid provider name"):
        Settings(data_dir=tmp_path, providers={"Bad Name": {"base_url": "http://127.0.0.1:1/v1"}})
    with pytest.raises(pydantic.ValidationError, match="environment variable name"):
        Settings(data_dir=tmp_path, providers={"p": {"base_url": "http://x/v1", "api_key_env": "sk-123!"}})
    with pytest.raises(UnknownSetting):
        Settings(data_dir=tmp_path, provider={})


async def test_rest_defines_persists_masks_and_removes(tmp_path: Path, server: FakeServer) -> None:
    body = {"base_url": f"{server.url}/v1", "api_key_env": "NOT_SET_ANYWHERE",
            "headers": {"Authorization": "Bearer from-header", "X-Title": "penguin"}}
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        app = create_app(core)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            created = await http.put("/api/v1/providers/gateway", json=body)
            assert created.status_code == 201
            assert created.json() == {
                "name": "gateway", "kind": "openai", "base_url": f"{server.url}/v1",
                "api_key_env": "NOT_SET_ANYWHERE", "key_set": False,
                "headers": {"Authorization": "***", "X-Title": "penguin"}, "source": "api",
            }
            assert (await http.put("/api/v1/providers/gateway", json=body)).status_code == 200
            server.reply(json_reply(completion("through the gateway")))
            reply = await http.post("/api/v1/chat", json={"agent_id": "gw", "text": "hi", "model": "gateway:m1"})
            assert reply.json()["response"] == "through the gateway"
            assert server.requests[-1].headers["authorization"] == "Bearer from-header"

            for name, payload, status in (
                ("openai", body, 422), ("Bad!", body, 422), ("p", {"base_url": "ftp://x"}, 422),
                ("p", {"base_url": "http://x/v1", "api_key": "sk-secret"}, 422),
                ("p", {"base_url": "http://x/v1", "headers": {"X-A": "a\r\nb"}}, 422),
                ("p", {"kind": "grpc", "base_url": "http://x/v1"}, 422), ("p", [], 422),
            ):
                answer = await http.put(f"/api/v1/providers/{name}", json=payload)
                assert answer.status_code == status, (name, payload, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
            assert (await http.get("/api/v1/providers/nope")).status_code == 404
            assert (await http.delete("/api/v1/providers/nope")).status_code == 404
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:  # persisted across restarts
        assert [p.name for p in core.list_providers()] == ["gateway"]
        removed = await core.delete_provider("gateway")
        assert removed.name == "gateway" and core.list_providers() == []


async def test_a_provider_of_the_config_cannot_be_removed_over_rest(tmp_path: Path) -> None:
    providers = {"fixed": {"base_url": "http://127.0.0.1:9/v1"}}
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo", providers=providers) as core:
        app = create_app(core)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            refused = await http.delete("/api/v1/providers/fixed")
            assert refused.status_code == 409 and "penguin.toml" in refused.json()["detail"]
            assert (await http.get("/api/v1/providers")).json()[0]["source"] == "config"
