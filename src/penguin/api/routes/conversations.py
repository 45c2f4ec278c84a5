"""Conversation history (cursor-paged) and checkpoints: create, list, rollback, branch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from penguin.api.routes._docs import problems
from penguin.api.schemas import (
    MAX_SEQ,
    AgentId,
    BranchRequest,
    CheckpointCreate,
    CheckpointInfo,
    ConversationInfo,
    HistoryPage,
    RollbackResult,
    Text,
)
from penguin.api.state import Api

router = APIRouter(tags=["conversations"])

ConversationPath = Annotated[Text, Path(description="A conversation id (`conv_...`).")]
CheckpointPath = Annotated[Text, Path(description="A checkpoint id (`cp_...`).")]


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationInfo,
    summary="Get a conversation",
    responses=problems(404),
)
async def get_conversation(conversation_id: ConversationPath, api: Api) -> dict[str, Any]:
    return (await api.core.get_conversation(conversation_id)).to_dict()


@router.get(
    "/conversations/{conversation_id}/history",
    response_model=HistoryPage,
    summary="Read a conversation's flat message log",
    responses=problems(404),
)
async def history(
    conversation_id: ConversationPath,
    api: Api,
    agent_id: Annotated[AgentId | None, Query(description="Only messages of this agent.")] = None,
    channel: Annotated[Text | None, Query(max_length=80, description="Only this channel.")] = None,
    message_type: Annotated[
        Text | None, Query(max_length=32, description="Only this type (`message`, `action`, `status`, ...).")
    ] = None,
    after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ, description="Cursor: messages with a larger seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
) -> dict[str, Any]:
    """One page of messages in seq order; pass `next_after_seq` back as `after_seq` for the next."""
    page = await api.core.history_page(
        conversation_id,
        after_seq=after_seq,
        limit=limit,
        agent_id=agent_id,
        channel=channel,
        message_type=message_type,
    )
    return {
        "conversation_id": conversation_id,
        "messages": [m.to_dict() for m in page],
        "next_after_seq": page[-1].seq if len(page) == limit else None,
    }


@router.post(
    "/conversations/{conversation_id}/checkpoints",
    response_model=CheckpointInfo,
    status_code=201,
    summary="Checkpoint a conversation",
    responses=problems(404),
)
async def create_checkpoint(conversation_id: ConversationPath, body: CheckpointCreate, api: Api) -> dict[str, Any]:
    """Mark the conversation's current end; taken in line with its turns (never mid-turn)."""
    return (await api.core.checkpoint(body.name, conversation_id=conversation_id)).to_dict()


@router.get(
    "/conversations/{conversation_id}/checkpoints",
    response_model=list[CheckpointInfo],
    summary="List a conversation's checkpoints",
    responses=problems(404),
)
async def list_checkpoints(conversation_id: ConversationPath, api: Api) -> list[dict[str, Any]]:
    return [cp.to_dict() for cp in await api.core.list_checkpoints(conversation_id=conversation_id)]


@router.post(
    "/checkpoints/{checkpoint_id}/rollback",
    response_model=RollbackResult,
    summary="Roll a conversation back to a checkpoint",
    responses=problems(404),
)
async def rollback(checkpoint_id: CheckpointPath, api: Api) -> dict[str, Any]:
    """Later messages are not deleted: they move to an `archive` conversation (returned)."""
    conversation, archive = await api.core.rollback(checkpoint_id)
    return {"conversation": conversation.to_dict(), "archive": archive.to_dict() if archive else None}


@router.post(
    "/checkpoints/{checkpoint_id}/branch",
    response_model=ConversationInfo,
    status_code=201,
    summary="Branch a new conversation from a checkpoint",
    responses=problems(404),
)
async def branch(checkpoint_id: CheckpointPath, api: Api, body: BranchRequest | None = None) -> dict[str, Any]:
    """A new conversation of the same agent holding copies of the messages up to the checkpoint."""
    return (await api.core.branch(checkpoint_id, title=body.title if body else "")).to_dict()
