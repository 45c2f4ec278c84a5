"""Model-facing tools for multi-agent work: ``spawn_agent``, ``delegate``, ``send_message``.

Each takes the ``ToolContext`` first (the calling agent is the parent or sender) and calls the
same ``PenguinCore`` methods the API uses, so a model's messages get envelopes and receipts like
anyone else's. Errors are raised as Penguin errors; the tool registry hands them back to the
model as the tool result.

Waiting on another agent from inside a turn is bounded by ``timeout``: an agent that waits for
its own reply, or two agents that wait for each other, would otherwise block forever.
"""

from __future__ import annotations

from typing import Any

from penguin.errors import ToolError
from penguin.tools.base import ToolContext


async def spawn_agent(
    ctx: ToolContext,
    child_id: str | None = None,
    system_prompt: str | None = None,
    model: str | None = None,
    share_session: bool = False,
    context_tokens: int | None = None,
) -> dict[str, Any]:
    """Create a sub-agent of yours: it inherits your prompt, tools and model unless you override them.

    share_session=true lets it see your recent conversation as context when you delegate to it.
    """
    spec = await ctx.core.spawn_agent(
        ctx.agent_id, child_id, system_prompt=system_prompt, model=model, share_session=share_session,
        context_tokens=context_tokens,
    )
    return {"agent_id": spec.agent_id, "parent_id": spec.parent_id, "model": spec.model,
            "context_tokens": spec.context_tokens}


async def delegate(ctx: ToolContext, child_id: str, task: str, wait: bool = True,
                   timeout: float = 120.0, max_iterations: int = 5) -> dict[str, Any]:
    """Give a task to one of your sub-agents and get its result (or, with wait=false, its task id)."""
    if timeout <= 0:
        raise ToolError("timeout must be positive")
    result = await ctx.core.delegate(ctx.agent_id, child_id, task, wait=wait, timeout=timeout,
                                     max_iterations=max_iterations)
    out: dict[str, Any] = result.to_dict()
    return out


async def send_message(ctx: ToolContext, recipient: str, content: str, channel: str | None = None,
                       message_type: str = "message", wait: bool = False, timeout: float = 60.0) -> dict[str, Any]:
    """Send a message to an agent id, 'role:<name>', 'human', or a room as 'room:<name>'.

    With wait=true (agents and roles only) you get the reply; otherwise the delivery receipt.
    """
    core = ctx.core
    if recipient.startswith("room:"):
        env, receipts = await core.post_to_room(recipient[5:], ctx.agent_id, content, message_type=message_type)
        return {"message_id": env.id, "receipts": [r.to_dict() for r in receipts]}
    if not wait:
        receipt = await core.send_message(ctx.agent_id, recipient, content, channel=channel,
                                          message_type=message_type)
        out: dict[str, Any] = receipt.to_dict()
        return out
    if timeout <= 0:
        raise ToolError("timeout must be positive")
    if recipient == ctx.agent_id:
        raise ToolError("you cannot wait for a reply from yourself; send without wait")
    answer = await core.ask(ctx.agent_id, recipient, content, channel=channel, timeout=timeout)
    reply: dict[str, Any] = answer.to_dict()
    return reply


TOOLS = (spawn_agent, delegate, send_message)
