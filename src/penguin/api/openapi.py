"""The API's documentation: the OpenAPI document and the Swagger UI / ReDoc pages, offline.

``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from ``/docs/static``, served
from the ``fastapi-offline`` package (MIT; it ships Swagger UI and ReDoc builds), so the pages
render on a machine without internet access, and load nothing from a CDN or Google Fonts.

``build_openapi`` post-processes FastAPI's document once:

* error responses are declared as ``application/problem+json``;
* the ``bearer`` security scheme is always declared; operations require it when the server has
  an API key, and accept anonymous calls too when it has none (loopback only);
* every operation gets examples: a request body example and a response example for each
  declared status, built from the schema (field names such as ``agent_id`` or ``text`` get
  realistic values) wherever the route did not give its own;
* ``tool_policy`` fields are typed by the ``ToolPolicy`` schema below.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

STATIC_PATH = "/docs/static"
PROBLEM_JSON = "application/problem+json"


class ToolPolicy(BaseModel):
    """Which tools an agent may call and how often (``agents.spec.ToolPolicy``); omitted fields keep
    their defaults."""

    model_config = ConfigDict(extra="forbid", title="ToolPolicy", json_schema_extra={"examples": [
        {"allow": ["read_file", "memory_*"], "deny": ["write_file"], "rate_per_minute": 30,
         "require_approval": ["run_shell"], "timeout": 30}]})

    allow: list[str] = Field(default=["*"], description="Glob patterns of tool names the agent may use.")
    deny: list[str] = Field(default=[], description="Globs refused even when allowed.")
    shell: bool = Field(default=False, description="Allow `run_shell` (off unless true).")
    rate_per_minute: int | None = Field(default=None, ge=1, description="Tool calls per minute, whole agent.")
    tool_rate_per_minute: dict[str, int] = Field(default={}, description="Calls per minute per tool glob.")
    max_concurrent: int | None = Field(default=None, ge=1, description="Concurrent tool calls at most.")
    task_quota: int | None = Field(default=None, ge=1, description="Tool calls per task at most.")
    tool_task_quota: dict[str, int] = Field(default={}, description="Calls per task per tool glob.")
    require_approval: list[str] = Field(default=[], description="Globs whose calls wait for approve/deny.")
    approval_timeout: float = Field(default=300.0, gt=0, description="Seconds to wait for a decision (then denied).")
    timeout: float = Field(default=60.0, gt=0, description="Seconds one tool call may run.")


#: The JSON schema of ``ToolPolicy``: what ``tool_policy`` fields declare (``WithJsonSchema``, inline,
#: and as a component). They stay plain objects at run time, because the core validates them
#: itself, with messages that name the field and the closest known name.
TOOL_POLICY_SCHEMA: dict[str, Any] = ToolPolicy.model_json_schema()


def install_docs(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Serve ``/docs`` and ``/redoc`` with assets from the package, never from a CDN."""
    static = resources.files("fastapi_offline") / "static"
    app.mount(STATIC_PATH, StaticFiles(directory=str(static)), name="docs-static")

    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js", swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon.png",
            # No validator badge: it would be fetched from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": False},
        )

    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{STATIC_PATH}/redoc.standalone.js",
                              redoc_favicon_url=f"{STATIC_PATH}/favicon.png", with_google_fonts=False)

    app.add_api_route("/docs", swagger, include_in_schema=False)
    app.add_api_route("/redoc", redoc, include_in_schema=False)


def build_openapi(app: FastAPI, *, api_key: bool) -> dict[str, Any]:
    """The document served at ``/openapi.json`` (built once, see the module docstring)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["ToolPolicy"] = TOOL_POLICY_SCHEMA
    components["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "The server's API key (PENGUIN_API_KEY); a server without one serves loopback only.",
    }}
    schema["security"] = [{"bearer": []}] if api_key else [{}, {"bearer": []}]
    examples = _Examples(components.get("schemas", {}))
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            _document(operation, examples)
    app.openapi_schema = schema
    return schema


def _document(operation: dict[str, Any], examples: _Examples) -> None:
    body = operation.get("requestBody", {}).get("content", {})
    for media in body.values():
        if "example" not in media and "examples" not in media and "schema" in media:
            media["example"] = examples.of(media["schema"])
    for status, response in operation.get("responses", {}).items():
        content = response.setdefault("content", {}) if status[:1] in "45" else response.get("content", {})
        if status[:1] in "45":
            if "example" in content.get("application/json", {}):
                continue  # a face with its own error shape (the OpenAI one) documents it itself
            problem = content.pop("application/json", None) or content.get(PROBLEM_JSON) or {}
            problem.setdefault("example", _problem_example(int(status), response.get("description", "")))
            content[PROBLEM_JSON] = problem
            continue
        for media_type, media in content.items():
            if "example" in media or "examples" in media:
                continue
            if media_type == "text/event-stream":
                media["example"] = _SSE_EXAMPLE
            elif "schema" in media and media["schema"]:
                media["example"] = examples.of(media["schema"])


_SSE_EXAMPLE = (
    'event: start\nid: 1\ndata: {"type":"start","agent_id":"support","conversation_id":"conv_01jf3zq8",'
    '"turn_id":"turn_01jf3zq8","model":"scripted:echo","seq":1}\n\n'
    'event: delta\nid: 2\ndata: {"type":"delta","agent_id":"support","conversation_id":"conv_01jf3zq8",'
    '"text":"Hello","seq":2}\n\n'
    'event: final\nid: 3\ndata: {"type":"final","agent_id":"support","response":"Hello","seq":3}\n\n'
)


def _problem_example(status: int, description: str) -> dict[str, Any]:
    slug = {400: "malformed-json", 401: "unauthorized", 403: "tool-denied", 404: "agent-not-found",
            409: "conflict", 413: "payload-too-large", 422: "validation-failed", 429: "quota-exceeded",
            502: "model-error", 503: "shutting-down"}.get(status, "internal-error")
    return {"type": f"https://penguin.dev/problems/{slug}", "title": description or slug, "status": status,
            "detail": description or "what was wrong and how to fix it"}


#: Realistic values for common field names (the schema's own example, default or enum wins).
_BY_NAME: dict[str, Any] = {
    "agent_id": "support", "agent_role": "reviewer", "role": "reviewer", "parent_id": "lead",
    "conversation_id": "conv_01jf3zq8", "turn_id": "turn_01jf3zq8", "task_id": "task_01jf3zq8",
    "message_id": "msg_01jf3zq8", "checkpoint_id": "cp_01jf3zq8", "memory_id": "mem_01jf3zq8",
    "id": "01jf3zq8", "text": "Summarise yesterday's tickets.", "content": "Summarise yesterday's tickets.",
    "prompt": "Draft the release notes.", "response": "Here is the summary: ...", "reply": "Done.",
    "system_prompt": "You answer support questions briefly.", "persona": "You answer support questions.",
    "model": "scripted:echo", "name": "release-1", "title": "release notes", "query": "release notes",
    "recipient": "support", "sender": "human", "channel": "team", "room": "team", "status": "completed",
    "base_url": "https://openrouter.ai/api/v1", "api_key_env": "OPENROUTER_API_KEY", "detail": "…",
    "url": "http://127.0.0.1:8000", "version": "0.3.3", "kind": "openai",
}


class _Examples:
    """Builds an example value from a JSON schema, resolving ``$ref`` into ``components``."""

    def __init__(self, schemas: dict[str, Any]) -> None:
        self._schemas = schemas

    def of(self, schema: dict[str, Any], name: str = "", depth: int = 0) -> Any:
        if depth > 6:
            return None
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self._schemas.get(ref.rsplit("/", 1)[-1], {})
            return self.of(target, name, depth + 1)
        for key in ("example", "const"):
            if key in schema:
                return schema[key]
        if schema.get("examples"):
            return schema["examples"][0]
        if "default" in schema and schema["default"] not in (None, [], {}):
            return schema["default"]
        if schema.get("enum"):
            return schema["enum"][0]
        for key in ("anyOf", "oneOf", "allOf"):
            options = [s for s in schema.get(key, []) if s.get("type") != "null"]
            if options:
                return self.of(options[0], name, depth + 1)
        return self._typed(schema, name, depth)

    def _typed(self, schema: dict[str, Any], name: str, depth: int) -> Any:
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            props = schema.get("properties", {})
            if not props:
                extra = schema.get("additionalProperties")
                return {"key": self.of(extra, "", depth + 1)} if isinstance(extra, dict) and extra else {}
            return {k: self.of(v, k, depth + 1) for k, v in props.items()}
        if kind == "array":
            item = self.of(schema.get("items", {}), name.rstrip("s"), depth + 1)
            return [] if item is None else [item]
        if kind == "string":
            return _BY_NAME.get(name, "string")
        if kind == "integer":
            return max(int(schema.get("minimum", 1)), 1)
        if kind == "number":
            return 1.5
        if kind == "boolean":
            return False
        return _BY_NAME.get(name)


__all__ = ["STATIC_PATH", "TOOL_POLICY_SCHEMA", "ToolPolicy", "build_openapi", "install_docs"]
