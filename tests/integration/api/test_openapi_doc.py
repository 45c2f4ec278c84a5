"""The OpenAPI document: examples on every operation, a typed ToolPolicy, the bearer scheme declared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from penguin import PenguinCore
from penguin.api import create_app


async def document(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo", **settings) as core:
        app = create_app(core)
        headers = {"Authorization": f"Bearer {settings['api_key']}"} if "api_key" in settings else {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers=headers) as http:
            reply = await http.get("/openapi.json")
            assert reply.status_code == 200
            doc: dict[str, Any] = reply.json()
            return doc


async def test_every_operation_has_request_and_response_examples(tmp_path: Path) -> None:
    doc = await document(tmp_path)
    missing = []
    operations = 0
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            operations += 1
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                if "example" not in media and "examples" not in media:
                    missing.append(f"{method} {path} request {media_type}")
            if method in ("post", "put", "patch") and "requestBody" not in operation and not any(
                    p.get("in") == "query" for p in operation.get("parameters", [])) and "{" not in path:
                missing.append(f"{method} {path} declares no request body")
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                if not content and status != "204":
                    missing.append(f"{method} {path} {status} has no content")
                for media_type, media in content.items():
                    if "example" not in media and "examples" not in media:
                        missing.append(f"{method} {path} {status} {media_type}")
    assert operations > 50
    assert missing == []
    chat_errors = doc["paths"]["/api/v1/chat"]["post"]["responses"]["404"]["content"]
    assert list(chat_errors) == ["application/problem+json"]
    assert chat_errors["application/problem+json"]["example"]["status"] == 404
    openai_errors = doc["paths"]["/v1/chat/completions"]["post"]["responses"]["404"]["content"]
    assert "error" in openai_errors["application/json"]["example"]  # the OpenAI face keeps its own shape


async def test_tool_policy_is_typed(tmp_path: Path) -> None:
    doc = await document(tmp_path)
    schemas = doc["components"]["schemas"]
    policy = schemas["ToolPolicy"]
    assert policy["additionalProperties"] is False
    assert {"allow", "deny", "shell", "rate_per_minute", "require_approval", "timeout"} <= set(policy["properties"])
    for model in ("AgentCreate", "AgentUpdate", "AgentInfo"):
        field = schemas[model]["properties"]["tool_policy"]
        typed = [field, *field.get("anyOf", [])]
        assert any(option.get("title") == "ToolPolicy" for option in typed), (model, field)


async def test_the_bearer_scheme_is_always_declared(tmp_path: Path) -> None:
    keyless = await document(tmp_path / "a")
    keyed = await document(tmp_path / "b", api_key="k")
    for doc in (keyless, keyed):
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert keyless["security"] == [{}, {"bearer": []}]  # anonymous on loopback, or the key
    assert keyed["security"] == [{"bearer": []}]
