"""``/api/v1/tasks``: autonomous multi-turn work with its own id, status and progress."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from penguin.api.routes._docs import problems
from penguin.api.schemas import AgentId, TaskInfo, TaskRequest, Text
from penguin.api.state import Api

router = APIRouter(prefix="/tasks", tags=["tasks"])

TaskPath = Annotated[Text, Path(description="A task id (`task_...`).")]


@router.post("", response_model=TaskInfo, status_code=202, summary="Start a task", responses=problems(404))
async def run_task(body: TaskRequest, api: Api) -> dict[str, Any]:
    """Start the task in the background (agent by `agent_id` or `agent_role`); poll `GET /tasks/{id}`."""
    return (await api.core.run_task(body.prompt, **body.core_options())).to_dict()


@router.get("", response_model=list[TaskInfo], summary="List tasks (newest first)", responses=problems())
async def list_tasks(
    api: Api, agent_id: Annotated[AgentId | None, Query(description="Only this agent's tasks.")] = None
) -> list[dict[str, Any]]:
    return [task.to_dict() for task in await api.core.list_tasks(agent_id=agent_id)]


@router.get("/{task_id}", response_model=TaskInfo, summary="Get a task", responses=problems(404))
async def get_task(task_id: TaskPath, api: Api) -> dict[str, Any]:
    return (await api.core.get_task(task_id)).to_dict()


@router.post("/{task_id}/cancel", response_model=TaskInfo, summary="Cancel a task", responses=problems(404, 409))
async def cancel_task(task_id: TaskPath, api: Api) -> dict[str, Any]:
    """Stop a queued or running task; 409 if it already finished."""
    return (await api.core.cancel_task(task_id)).to_dict()
