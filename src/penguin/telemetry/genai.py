"""Span attributes of the OpenTelemetry GenAI semantic conventions, as Penguin fills them.

Kept apart from the engine so the turn loop reads as a turn loop; each helper returns plain
attribute mappings (or sets them on a span it is handed) and imports nothing from the SDK.
"""

from __future__ import annotations

from typing import Any

from penguin.models.base import Usage


def ids(agent_id: str, conversation_id: str, turn_id: str) -> dict[str, str]:
    """The Penguin ids every span of a turn carries."""
    return {"penguin.agent_id": agent_id, "penguin.conversation_id": conversation_id, "penguin.turn_id": turn_id}


def usage(value: Usage) -> dict[str, int]:
    """``gen_ai.usage.*`` token counts."""
    return {"gen_ai.usage.input_tokens": value.input_tokens, "gen_ai.usage.output_tokens": value.output_tokens}


def tool_outcome(span: Any, error: str | None, denied: str | None) -> None:
    """Mark a tool span failed when the call failed or was refused (the turn goes on)."""
    if error is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", f"denied:{denied}" if denied else "tool_error")
    span.set_status(Status(StatusCode.ERROR, error[:200]))


__all__ = ["ids", "tool_outcome", "usage"]
