"""The plumbing of ``PenguinClient``: its error types and the one place HTTP answers become them.

::

    PenguinAPIError                 any failure talking to the API (.status, .problem, .detail, .field, .code)
    ├── BadRequestError             400 (malformed JSON, bad request)
    ├── AuthenticationError         401 (missing/wrong API key; also a refused WebSocket handshake)
    ├── PermissionDeniedError       403
    ├── NotFoundError               404 (unknown agent, conversation, checkpoint, task or route)
    ├── MethodNotAllowedError       405
    ├── ConflictError               409 (exists already, finished, cancelled, ...)
    ├── PayloadTooLargeError        413
    ├── ValidationError             422 (.field names the bad field)
    ├── RateLimitError              429
    ├── ServerError                 5xx
    └── APIConnectionError          no HTTP answer (refused, reset, DNS)
        └── APITimeoutError         no answer in time
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
from pydantic import BaseModel, TypeAdapter

M = TypeVar("M", bound=BaseModel)
API = "/api/v1"


class PenguinAPIError(Exception):
    """A request to the Penguin API failed; ``problem`` is the server's problem+json body."""

    def __init__(self, detail: str, *, status: int | None = None, problem: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {detail}" if status is not None else detail)
        self.detail = detail
        self.status = status
        self.problem: dict[str, Any] = problem or {}
        #: The field the server blamed, when one was.
        self.field: str | None = self.problem.get("field")
        #: The problem's short type, e.g. ``agent-not-found`` or ``invalid-agent-id``.
        self.code: str = str(self.problem.get("type", "")).rsplit("/", 1)[-1]


class BadRequestError(PenguinAPIError): ...


class AuthenticationError(PenguinAPIError): ...


class PermissionDeniedError(PenguinAPIError): ...


class NotFoundError(PenguinAPIError): ...


class MethodNotAllowedError(PenguinAPIError): ...


class ConflictError(PenguinAPIError): ...


class PayloadTooLargeError(PenguinAPIError): ...


class ValidationError(PenguinAPIError): ...


class RateLimitError(PenguinAPIError): ...


class ServerError(PenguinAPIError): ...


class APIConnectionError(PenguinAPIError): ...


class APITimeoutError(APIConnectionError): ...


_BY_STATUS: dict[int, type[PenguinAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
}


def error_for(status: int, problem: dict[str, Any]) -> PenguinAPIError:
    """The typed exception for an error answer with ``status`` and ``problem`` body."""
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else PenguinAPIError)
    return cls(str(problem.get("detail") or problem.get("title") or "request failed"), status=status, problem=problem)


@contextlib.contextmanager
def transport_errors() -> Iterator[None]:
    """Translate aiohttp transport failures, once, into the client's own types."""
    try:
        yield
    except TimeoutError as exc:  # aiohttp's ServerTimeoutError is one too
        raise APITimeoutError(f"the Penguin API did not answer in time ({type(exc).__name__}: {exc})") from exc
    except aiohttp.ClientError as exc:  # refused, reset, cut short, not a URL
        raise APIConnectionError(f"cannot reach the Penguin API ({type(exc).__name__}: {exc}); is it running?") from exc


def problem_of(status: int, reason: str | None, raw: bytes) -> dict[str, Any]:
    """The problem+json body of an error answer, or one made up from its status and text."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace")[:500]
        return {"detail": text or reason or "request failed", "status": status}
    return body if isinstance(body, dict) else {"detail": str(body)[:500], "status": status}


def seg(value: str) -> str:
    """One path segment, percent-encoded so an id can never change the route."""
    return quote(str(value), safe="")


def query(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def query_pairs(params: dict[str, Any] | None) -> list[tuple[str, str]] | None:
    """Query parameters as text pairs: booleans as ``true``/``false``, lists repeated, ``None`` left out."""
    if not params:
        return None
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else (value,):
            if item is not None:
                pairs.append((key, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return pairs


class ClientBase(abc.ABC):
    """Request helpers shared by the client's method groups; subclasses own the HTTP client."""

    @abc.abstractmethod
    async def _request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """Send one request under ``/api/v1`` and return the decoded JSON (errors raised typed)."""

    async def _one(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(await self._request(method, path, **kwargs))

    async def _many(self, model: type[M], path: str, **kwargs: Any) -> list[M]:
        return TypeAdapter(list[model]).validate_python(  # type: ignore[valid-type]
            await self._request("GET", path, **kwargs)
        )
