"""The ``MultiAgentCoordinator`` over HTTP: roles, round-robin, role chains, broadcasts, policy
routing, and sub-agent delegation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from penguin.api.routes._docs import problems
from penguin.api.schemas import AgentId, AgentInfo, Text
from penguin.api.schemas_orchestration import (
    AgentUsageInfo,
    AnswerInfo,
    BroadcastRequest,
    ChainRequest,
    DelegateRequest,
    DelegationInfo,
    RoleAssignment,
    RoleMembers,
    RoundRobinRequest,
    RouteRequest,
    RoutesSet,
    SubAgentCreate,
    Wait,
)
from penguin.api.state import Api

router = APIRouter(tags=["coordination"])

RolePath = Annotated[AgentId, Path(description="A role name (same rule as agent ids).")]
AgentPath = Annotated[AgentId, Path(description="The agent id.")]


@router.get("/coordinator/roles", response_model=dict[str, list[str]], summary="Role assignments",
            responses=problems())
async def roles(api: Api) -> dict[str, list[str]]:
    return api.core.roles()


@router.put("/coordinator/roles/{role}", response_model=RoleMembers, summary="Assign a role",
            responses=problems(404))
async def assign_role(role: RolePath, body: RoleAssignment, api: Api) -> dict[str, Any]:
    """Make these agents (in this order) the ones that fill the role, replacing earlier ones."""
    return {"role": role, "agent_ids": await api.core.assign_role(role, body.agent_ids)}


@router.delete("/coordinator/roles/{role}", response_model=RoleMembers, summary="Unassign a role",
               responses=problems(404))
async def unassign_role(role: RolePath, api: Api,
                        agent_id: Annotated[AgentId | None, Query(description="Only this agent.")] = None,
                        ) -> dict[str, Any]:
    return {"role": role, "agent_ids": await api.core.unassign_role(role, agent_id)}


@router.post("/coordinator/round-robin", response_model=AnswerInfo, summary="Ask the role's next agent",
             responses=problems(404))
async def round_robin(body: RoundRobinRequest, api: Api) -> dict[str, Any]:
    answer = await api.core.round_robin(body.role, body.text, sender=body.sender, timeout=body.timeout,
                                        metadata=body.metadata, context=body.context)
    return answer.to_dict()


@router.post("/coordinator/chain", response_model=dict[str, Any], summary="Run a role chain",
             responses=problems(404))
async def role_chain(body: ChainRequest, api: Api) -> dict[str, Any]:
    """Each role's agent in order, each fed the previous real reply; returns the lineage."""
    lineage = await api.core.role_chain(body.roles, body.text, sender=body.sender, timeout=body.timeout,
                                        context=body.context)
    return lineage.to_dict()


@router.post("/coordinator/broadcast", response_model=list[AnswerInfo], summary="Broadcast",
             responses=problems(404))
async def broadcast(body: BroadcastRequest, api: Api) -> list[dict[str, Any]]:
    """Send to every agent of `roles` and `agents`, or to a `room`; one answer per target."""
    answers = await api.core.broadcast(body.text, roles=body.roles, agents=body.agents, room=body.room,
                                       sender=body.sender, timeout=body.timeout)
    return [a.to_dict() for a in answers]


@router.put("/coordinator/routes", response_model=dict[str, Any], summary="Set routing rules",
            responses=problems(404))
async def set_routes(body: RoutesSet, api: Api) -> dict[str, Any]:
    rules = [rule.model_dump(exclude_unset=True) for rule in body.rules]
    return (await api.core.set_routes(rules, default=body.default)).to_dict()


@router.post("/coordinator/route", response_model=dict[str, Any], summary="Route by policy",
             responses=problems(404))
async def route(body: RouteRequest, api: Api) -> dict[str, Any]:
    """Pick the target by the first matching rule and ask it, falling back along its chain."""
    result = await api.core.route(body.text, sender=body.sender, metadata=body.metadata, context=body.context,
                                  timeout=body.timeout)
    return result.to_dict()


@router.post("/agents/{agent_id}/subagents", response_model=AgentInfo, status_code=201,
             summary="Spawn a sub-agent", responses=problems(404, 409))
async def spawn_agent(agent_id: AgentPath, body: SubAgentCreate, api: Api) -> dict[str, Any]:
    """A child that inherits the parent's prompt, tools and settings unless overridden."""
    fields = body.model_dump(exclude_unset=True, exclude={"child_id"})
    spec = await api.core.spawn_agent(agent_id, body.child_id, **fields)
    out = spec.to_dict()
    out.pop("tenant_id", None)
    return out


@router.get("/agents/{agent_id}/subagents", response_model=list[AgentInfo], summary="List sub-agents",
            responses=problems(404))
async def list_subagents(agent_id: AgentPath, api: Api) -> list[dict[str, Any]]:
    api.core.get_agent(agent_id)
    return [spec.to_dict() for spec in api.core.list_subagents(agent_id)]


@router.post("/agents/{agent_id}/delegate", response_model=DelegationInfo, summary="Delegate a task",
             responses=problems(404, 409))
async def delegate(agent_id: AgentPath, body: DelegateRequest, api: Api) -> dict[str, Any]:
    """Give a task to a sub-agent; with `wait` the answer holds until it finishes (or `timeout`)."""
    result = await api.core.delegate(agent_id, body.child_id, body.task, wait=body.wait, timeout=body.timeout,
                                     max_iterations=body.max_iterations, context=body.context)
    return result.to_dict()


@router.get("/delegations/{task_id}", response_model=DelegationInfo, summary="A delegation's result",
            responses=problems(404))
async def delegation_result(task_id: Annotated[Text, Path()], api: Api,
                            timeout: Annotated[Wait | None, Query()] = None) -> dict[str, Any]:
    return (await api.core.delegation_result(task_id, timeout)).to_dict()


@router.post("/agents/{agent_id}/delegations/cancel", response_model=list[str],
             summary="Cancel a sub-agent's delegated work", responses=problems(404))
async def cancel_subagent(agent_id: AgentPath, api: Api) -> list[str]:
    return await api.core.cancel_subagent(agent_id)


@router.get("/agents/{agent_id}/usage", response_model=AgentUsageInfo, summary="Tokens and turns used",
            responses=problems(404))
async def agent_usage(agent_id: AgentPath, api: Api) -> dict[str, Any]:
    api.core.get_agent(agent_id)
    return dict(api.core.agent_usage(agent_id).to_dict())
