"""Tool approvals and tool-call statistics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from penguin.api.routes._docs import problems
from penguin.api.schemas import AgentId, Text
from penguin.api.schemas_orchestration import ApprovalDecision, ApprovalInfo
from penguin.api.state import Api

router = APIRouter(tags=["tools"])

ApprovalPath = Annotated[Text, Path(description="An approval request id.")]


@router.get("/approvals", response_model=list[ApprovalInfo], summary="Tool calls waiting for approval",
            responses=problems())
async def pending(api: Api, agent_id: Annotated[AgentId | None, Query()] = None) -> list[dict[str, Any]]:
    return [request.to_dict() for request in api.core.pending_approvals(agent_id)]


@router.post("/approvals/{approval_id}/approve", response_model=ApprovalInfo, summary="Approve a tool call",
             responses=problems(404, 409))
async def approve(approval_id: ApprovalPath, api: Api) -> dict[str, Any]:
    return api.core.approve_tool_call(approval_id).to_dict()


@router.post("/approvals/{approval_id}/deny", response_model=ApprovalInfo, summary="Deny a tool call",
             responses=problems(404, 409))
async def deny(approval_id: ApprovalPath, api: Api, body: ApprovalDecision | None = None) -> dict[str, Any]:
    return api.core.deny_tool_call(approval_id, body.reason if body else "").to_dict()


@router.get("/tools/stats", response_model=dict[str, Any], summary="Tool-call statistics", responses=problems())
async def stats(api: Api, agent_id: Annotated[AgentId | None, Query()] = None) -> dict[str, Any]:
    """Allowed, denied (by reason), failed and timed-out calls, per agent and per tool."""
    return api.core.tool_stats(agent_id)
