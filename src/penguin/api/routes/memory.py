"""Shared memory over HTTP: add, search (hybrid keyword + vector), list, read, update, delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from penguin.api.routes._docs import problems
from penguin.api.schemas import AgentId, Text
from penguin.api.schemas_orchestration import (
    MemoryCreate,
    MemoryHitInfo,
    MemoryInfo,
    MemoryScope,
    MemoryStatsInfo,
    MemoryUpdate,
    Tag,
)
from penguin.api.state import Api

router = APIRouter(prefix="/memory", tags=["memory"])

MemoryPath = Annotated[Text, Path(description="A memory id.")]
Caller = Annotated[AgentId | None, Query(description="The calling agent: sees shared and its own memories.")]
Tags = Annotated[list[Tag] | None, Query(max_length=64)]
Epoch = Annotated[float | None, Query(ge=0, le=1e11)]


@router.post("", response_model=MemoryInfo, status_code=201, summary="Add a memory", responses=problems())
async def add(body: MemoryCreate, api: Api) -> dict[str, Any]:
    memory = await api.core.memory_add(
        body.text, agent_id=body.agent_id, scope=body.scope, tags=body.tags, metadata=body.metadata,
        source_conversation_id=body.source_conversation_id, source_message_id=body.source_message_id,
    )
    return memory.to_dict()


@router.get("/search", response_model=list[MemoryHitInfo], summary="Search memory", responses=problems())
async def search(
    api: Api,
    q: Annotated[Text, Query(min_length=1, max_length=10_000, description="The query.")],
    agent_id: Caller = None,
    k: Annotated[int, Query(ge=1, le=100)] = 5,
    author: Annotated[AgentId | None, Query()] = None,
    scope: Annotated[MemoryScope | None, Query()] = None,
    tags: Tags = None,
    since: Epoch = None,
    until: Epoch = None,
    mode: Annotated[Literal["hybrid", "keyword", "vector"], Query()] = "hybrid",
) -> list[dict[str, Any]]:
    """Best first; `hybrid` fuses keyword (FTS) and vector ranks."""
    hits = await api.core.memory_search(q, agent_id=agent_id, k=k, author=author, scope=scope, tags=tags,
                                        since=since, until=until, mode=mode)
    return [hit.to_dict() for hit in hits]


@router.get("/stats", response_model=MemoryStatsInfo, summary="Memory statistics", responses=problems())
async def stats(api: Api) -> dict[str, Any]:
    return (await api.core.memory_stats()).to_dict()


@router.get("", response_model=list[MemoryInfo], summary="List memories (newest first)", responses=problems())
async def list_memories(
    api: Api,
    agent_id: Caller = None,
    author: Annotated[AgentId | None, Query()] = None,
    scope: Annotated[MemoryScope | None, Query()] = None,
    tags: Tags = None,
    since: Epoch = None,
    until: Epoch = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[Text | None, Query(max_length=64, description="Cursor: last id of the previous page.")] = None,
) -> list[dict[str, Any]]:
    memories = await api.core.memory_list(agent_id=agent_id, author=author, scope=scope, tags=tags, since=since,
                                          until=until, limit=limit, before=before)
    return [m.to_dict() for m in memories]


@router.get("/{memory_id}", response_model=MemoryInfo, summary="Get a memory", responses=problems(404))
async def get(memory_id: MemoryPath, api: Api, agent_id: Caller = None) -> dict[str, Any]:
    return (await api.core.memory_get(memory_id, agent_id=agent_id)).to_dict()


@router.patch("/{memory_id}", response_model=MemoryInfo, summary="Update a memory", responses=problems(404, 409))
async def update(memory_id: MemoryPath, body: MemoryUpdate, api: Api, agent_id: Caller = None) -> dict[str, Any]:
    memory = await api.core.memory_update(memory_id, agent_id=agent_id, **body.model_dump(exclude_none=True))
    return memory.to_dict()


@router.delete("/{memory_id}", response_model=MemoryInfo, summary="Delete a memory", responses=problems(404))
async def delete(memory_id: MemoryPath, api: Api, agent_id: Caller = None) -> dict[str, Any]:
    return (await api.core.memory_delete(memory_id, agent_id=agent_id)).to_dict()
