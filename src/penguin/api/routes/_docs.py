"""OpenAPI declarations shared by the routes: which problem responses an operation can return."""

from __future__ import annotations

from typing import Any

from penguin.api.schemas import Problem

_DESCRIPTIONS = {
    400: "Malformed JSON or a bad request",
    401: "Missing or wrong API key",
    404: "Unknown agent, conversation, checkpoint or task",
    409: "Not allowed in the current state (exists already, cancelled, ...)",
    413: "Request body over the limit",
    422: "Invalid input; `field` names it",
    429: "Quota or rate limit exhausted",
    502: "The model provider failed",
    503: "Shutting down, or a model runtime is not installed",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for ``statuses`` (plus 400, 401, 413 and 422, which any route can return)."""
    wanted = sorted({400, 401, 413, 422, *statuses})
    return {status: {"model": Problem, "description": _DESCRIPTIONS.get(status, "Error")} for status in wanted}
