"""The one table from Penguin's typed errors to HTTP statuses, and the problem+json responses.

Every error the API returns is an RFC 9457 problem (``application/problem+json``) with ``type``,
``title``, ``status``, ``detail`` and, when one field is to blame, ``field``. The sources are::

    PenguinError raised by the core          → STATUS_BY_ERROR (walked along the class's MRO)
                                               or the status a derived class declares
    pydantic RequestValidationError          → 422 validation-failed / invalid-agent-id, 400 malformed-json
    Starlette HTTPException (routing)        → 404 unknown route, 405 wrong method, ...
    anything else                            → logged with its traceback, 500 internal-error

Routes never build error responses themselves: they let the core raise, and these handlers
translate once, here. Errors that exist only at the HTTP edge (authentication, shutdown,
malformed JSON) are declared below as members of the same hierarchy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from penguin.errors import (
    AgentExists,
    AgentNotFound,
    AgentPaused,
    CheckpointNotFound,
    Conflict,
    ConversationNotFound,
    DataDirInUse,
    ExtraNotInstalled,
    InvalidAgentId,
    InvalidModelString,
    MigrationFailed,
    MigrationRequired,
    ModelCacheUnwritable,
    ModelError,
    ModelNotInstalled,
    NotFound,
    PayloadTooLarge,
    PenguinError,
    QuotaExceeded,
    RuntimeFailure,
    SandboxUnavailable,
    SchemaMismatch,
    SchemaTooNew,
    SchemaUnrecognized,
    TaskNotFound,
    ToolDenied,
    ToolError,
    TurnCancelled,
    UnknownSetting,
    UserError,
    ValidationFailed,
)

log = logging.getLogger("penguin.api")

PROBLEM_JSON = "application/problem+json"


class MalformedJson(UserError):
    """The body is not valid JSON."""

    code = "malformed-json"
    title = "Malformed JSON"


class AuthenticationRequired(UserError):
    """The server has an API key and the request did not present it."""

    status = 401
    code = "unauthorized"
    title = "Authentication required"


class ServerShuttingDown(RuntimeFailure):
    """The server is draining in-flight work and accepts no new turns."""

    status = 503
    code = "shutting-down"
    title = "Server shutting down"


class InternalError(RuntimeFailure):
    """A bug: an exception Penguin did not raise on purpose."""

    code = "internal-error"
    title = "Internal server error"


#: The HTTP status of each error class of ``penguin.errors`` and of this edge. Errors other
#: packages derive (bus, memory, ...) need no entry: lookup walks the class's MRO and takes the
#: first class that is listed here or declares its own ``status``.
STATUS_BY_ERROR: Mapping[type[PenguinError], int] = {
    PenguinError: 500,
    UserError: 400,
    MalformedJson: 400,
    AuthenticationRequired: 401,
    NotFound: 404,
    AgentNotFound: 404,
    ConversationNotFound: 404,
    CheckpointNotFound: 404,
    TaskNotFound: 404,
    Conflict: 409,
    AgentExists: 409,
    DataDirInUse: 409,
    PayloadTooLarge: 413,
    ValidationFailed: 422,
    InvalidAgentId: 422,
    InvalidModelString: 422,
    UnknownSetting: 422,
    RuntimeFailure: 500,
    InternalError: 500,
    ToolError: 500,
    ToolDenied: 403,
    TurnCancelled: 409,
    AgentPaused: 409,
    QuotaExceeded: 429,
    ModelError: 502,
    ModelNotInstalled: 503,
    ModelCacheUnwritable: 503,
    ExtraNotInstalled: 503,
    ServerShuttingDown: 503,
    SandboxUnavailable: 503,
    # Raised when a core starts on a database it must not open (the CLI exits 2 on them).
    SchemaMismatch: 409,
    SchemaTooNew: 409,
    MigrationRequired: 409,
    SchemaUnrecognized: 409,
    MigrationFailed: 500,
}


def status_for(exc: PenguinError) -> int:
    """The HTTP status of ``exc``: ``STATUS_BY_ERROR``, else the status its class declares."""
    for cls in type(exc).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
        declared = vars(cls).get("status")
        if isinstance(declared, int):
            return declared
    return 500


def problem(exc: PenguinError) -> dict[str, Any]:
    """The problem+json body of ``exc`` with the status of the table."""
    body = exc.to_problem()
    body["status"] = status_for(exc)
    return body


def problem_response(exc: PenguinError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(problem(exc), status_code=status_for(exc), media_type=PROBLEM_JSON, headers=headers)


def error_event(
    error: PenguinError, agent_id: str | None, conversation_id: str | None, **extra: Any
) -> dict[str, Any]:
    """The stream event (SSE or WebSocket) reporting ``error``: ``{"type": "error", ..., "problem": {...}}``."""
    return {"type": "error", "agent_id": agent_id, "conversation_id": conversation_id, **extra,
            "problem": problem(error)}


def _field(loc: Sequence[Any]) -> str:
    # Drop pydantic's validator/union tags (``function-after[...]``, ``list[...]``): not field names.
    parts = [str(p) for p in loc if "[" not in str(p)]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type"})


def from_validation_errors(errors: Sequence[Mapping[str, Any]]) -> PenguinError:
    """Turn pydantic errors (of a request or a WebSocket frame) into one typed error.

    The first error names the field and the detail; all of them are listed under ``errors``.
    """
    listed = [
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in errors
    ]
    if not listed:
        return ValidationFailed("the request is invalid", field="body")
    first, raw = listed[0], errors[0]
    if first["type"] == "json_invalid":
        reason = (raw.get("ctx") or {}).get("error", "invalid JSON")
        return MalformedJson(f"the body is not valid JSON: {reason}", field="body")
    if first["type"] == "invalid_agent_id":
        return InvalidAgentId(first["message"], field=first["field"].split(".")[0], errors=listed)
    if first["type"] == "missing":
        detail = f"{first['field']}: this field is required"
    elif tuple(raw.get("loc", ())) == ("body",) and first["type"] in _NOT_AN_OBJECT:
        detail = "the body must be a JSON object; send it with Content-Type: application/json"
    elif first["type"] == "extra_forbidden":
        detail = f"{first['field']}: unknown field; check the spelling against /openapi.json"
    else:
        detail = f"{first['field']}: {first['message']}"
    if len(listed) > 1:
        detail += f" (and {len(listed) - 1} more problem(s), see errors)"
    return ValidationFailed(detail, field=first["field"], errors=listed)


async def _penguin_error(request: Request, exc: PenguinError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationRequired) else None
    return problem_response(exc, headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    return problem_response(from_validation_errors(exc.errors()))


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    status = exc.status_code
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "HTTP error"
    if status == 404:
        detail = f"no route {request.url.path!r}; the API lives under /api/v1 (see /docs)"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed on {request.url.path!r}; allowed: {allowed or 'none'}"
    else:
        detail = str(exc.detail) if exc.detail else phrase
    body = {
        "type": f"https://penguin.dev/problems/{phrase.lower().replace(' ', '-')}",
        "title": phrase,
        "status": status,
        "detail": detail,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=exc.headers)


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        InternalError(f"an internal error occurred ({type(exc).__name__}); it was logged on the server")
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the translations above on ``app``."""
    # Starlette types handlers as taking ``Exception``; each of these is registered for its own type.
    app.add_exception_handler(PenguinError, _penguin_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled)


__all__ = [
    "PROBLEM_JSON",
    "STATUS_BY_ERROR",
    "AuthenticationRequired",
    "InternalError",
    "MalformedJson",
    "ServerShuttingDown",
    "from_validation_errors",
    "install_error_handlers",
    "problem",
    "problem_response",
    "error_event",
    "status_for",
]
