"""``/api/v1/agents``: create, read, update, remove, pause, resume and cancel personas."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from penguin.agents.spec import AgentSpec
from penguin.api.routes._docs import problems
from penguin.api.schemas import (
    AgentCreate,
    AgentId,
    AgentInfo,
    AgentUpdate,
    CancelResult,
    ConversationId,
    ConversationInfo,
)
from penguin.api.state import Api

router = APIRouter(prefix="/agents", tags=["agents"])

AgentPath = Annotated[AgentId, Path(description="The agent id (1-64 of A-Z a-z 0-9 _ -).")]


def _info(spec: AgentSpec, status: dict[str, Any] | None = None) -> dict[str, Any]:
    out = spec.to_dict()
    out.pop("tenant_id", None)
    if status is not None:
        out["status"] = status
    return out


@router.get("", response_model=list[AgentInfo], summary="List agents", responses=problems())
async def list_agents(
    api: Api, role: Annotated[AgentId | None, Query(description="Only agents with this role.")] = None
) -> list[dict[str, Any]]:
    return [_info(spec) for spec in api.core.list_agents(role=role)]


@router.post("", response_model=AgentInfo, status_code=201, summary="Create an agent", responses=problems(404, 409))
async def create_agent(
    body: AgentCreate,
    api: Api,
    exist_ok: Annotated[
        bool, Query(description="When the id is taken, update that agent with the given fields instead of a 409.")
    ] = False,
) -> dict[str, Any]:
    """Register a persona; 409 if the id is taken (PATCH changes an agent; `?exist_ok=true` upserts)."""
    return _info(await api.core.create_agent(body.agent_id, exist_ok=exist_ok, **body.changes()))


@router.get("/{agent_id}", response_model=AgentInfo, summary="Get an agent", responses=problems(404))
async def get_agent(agent_id: AgentPath, api: Api) -> dict[str, Any]:
    """The agent's settings and live runtime status (running and queued turns)."""
    spec = api.core.get_agent(agent_id)
    return _info(spec, api.core.agent_status(agent_id))


@router.patch("/{agent_id}", response_model=AgentInfo, summary="Update an agent", responses=problems(404, 409))
async def update_agent(agent_id: AgentPath, body: AgentUpdate, api: Api) -> dict[str, Any]:
    """Change only the fields present; a model change applies to this agent alone."""
    return _info(await api.core.update_agent(agent_id, **body.changes()))


@router.delete("/{agent_id}", response_model=AgentInfo, summary="Remove an agent", responses=problems(404, 409))
async def delete_agent(agent_id: AgentPath, api: Api) -> dict[str, Any]:
    """Remove the agent (its conversations stay stored); returns what was removed."""
    return _info(await api.core.remove_agent(agent_id))


@router.post("/{agent_id}/pause", response_model=AgentInfo, summary="Pause an agent", responses=problems(404))
async def pause_agent(agent_id: AgentPath, api: Api) -> dict[str, Any]:
    """New messages are accepted and queued; no turn starts until resume."""
    return _info(await api.core.pause_agent(agent_id))


@router.post("/{agent_id}/resume", response_model=AgentInfo, summary="Resume an agent", responses=problems(404))
async def resume_agent(agent_id: AgentPath, api: Api) -> dict[str, Any]:
    return _info(await api.core.resume_agent(agent_id))


@router.post(
    "/{agent_id}/cancel", response_model=CancelResult, summary="Cancel in-flight turns", responses=problems(404)
)
async def cancel_agent(
    agent_id: AgentPath,
    api: Api,
    conversation_id: Annotated[ConversationId | None, Query(description="Only this conversation's turn.")] = None,
) -> dict[str, Any]:
    """Stop the agent's running turn(s); each is recorded as cancelled in its conversation."""
    return {"agent_id": agent_id, "cancelled": api.core.cancel(agent_id, conversation_id)}


@router.get(
    "/{agent_id}/conversations",
    response_model=list[ConversationInfo],
    summary="List an agent's conversations",
    responses=problems(404),
)
async def list_conversations(agent_id: AgentPath, api: Api) -> list[dict[str, Any]]:
    return [conv.to_dict() for conv in await api.core.list_conversations(agent_id)]
