"""MessageBus over HTTP: send messages with delivery receipts, read the log, and team rooms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from penguin.api.routes._docs import problems
from penguin.api.schemas import MAX_SEQ, AgentId, Text
from penguin.api.schemas_orchestration import (
    Address,
    Channel,
    EnvelopeInfo,
    MessageSend,
    MessageType,
    ReceiptInfo,
    RoomCreate,
    RoomInfo,
    RoomJoin,
    RoomPostInfo,
    RoomPostRequest,
)
from penguin.api.state import Api

router = APIRouter(tags=["messages"])

MessagePath = Annotated[Text, Path(description="A message (envelope) id.")]
RoomPath = Annotated[AgentId, Path(description="A room name (same rule as agent ids).")]
SinceSeq = Annotated[int, Query(ge=0, le=MAX_SEQ, description="Cursor: entries with a larger seq.")]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post("/messages", response_model=ReceiptInfo, status_code=202, summary="Send a message",
             responses=problems(404))
async def send_message(body: MessageSend, api: Api) -> dict[str, Any]:
    """Queue a message for an agent id, `role:<name>` or `human`; the `queued` receipt is returned.

    The recipient processes it as a turn in arrival order and its reply is published back to the
    sender. Follow delivery with `GET /messages/{id}/receipt` (queued → delivered → processed | failed).
    """
    receipt = await api.core.send_message(
        body.sender, body.recipient, body.content, channel=body.channel, message_type=body.message_type,
        metadata=body.metadata, correlation_id=body.correlation_id,
    )
    return receipt.to_dict()


@router.get("/messages", response_model=list[EnvelopeInfo], summary="Read the message log",
            responses=problems())
async def list_messages(
    api: Api,
    agent_id: Annotated[AgentId | None, Query(description="Sent by or to this agent.")] = None,
    sender: Annotated[Address | None, Query()] = None,
    recipient: Annotated[Address | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    message_type: Annotated[MessageType | None, Query()] = None,
    since_seq: SinceSeq = 0,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """Bus envelopes (messages, replies, events) after `since_seq` matching every filter, oldest first."""
    envelopes = await api.core.list_messages(agent_id=agent_id, sender=sender, recipient=recipient, channel=channel,
                                             message_type=message_type, since_seq=since_seq, limit=limit)
    return [env.to_dict() for env in envelopes]


@router.get("/messages/{message_id}", response_model=EnvelopeInfo, summary="Get a message",
            responses=problems(404))
async def get_message(message_id: MessagePath, api: Api) -> dict[str, Any]:
    return (await api.core.get_message(message_id)).to_dict()


@router.get("/messages/{message_id}/receipt", response_model=ReceiptInfo, summary="A message's delivery receipt",
            responses=problems(404))
async def get_receipt(
    message_id: MessagePath, api: Api,
    recipient: Annotated[Address | None, Query(description="For messages with several recipients.")] = None,
) -> dict[str, Any]:
    return (await api.core.get_receipt(message_id, recipient)).to_dict()


@router.get("/receipts", response_model=list[ReceiptInfo], summary="List delivery receipts", responses=problems())
async def list_receipts(
    api: Api,
    sender: Annotated[Address | None, Query()] = None,
    recipient: Annotated[Address | None, Query()] = None,
    message_id: Annotated[Text | None, Query(max_length=64)] = None,
    status: Annotated[Text | None, Query(max_length=16, description="queued, delivered, processed, failed")] = None,
    since_seq: SinceSeq = 0,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    receipts = await api.core.list_receipts(sender=sender, recipient=recipient, message_id=message_id,
                                            status=status, since_seq=since_seq, limit=limit)
    return [r.to_dict() for r in receipts]


@router.post("/rooms", response_model=RoomInfo, status_code=201, summary="Create a room", responses=problems(404, 409))
async def create_room(body: RoomCreate, api: Api) -> dict[str, Any]:
    room = await api.core.create_room(body.name, members=body.members, created_by=body.created_by,
                                      metadata=body.metadata)
    return room.to_dict()


@router.get("/rooms", response_model=list[RoomInfo], summary="List rooms", responses=problems())
async def list_rooms(api: Api, member: Annotated[AgentId | None, Query()] = None) -> list[dict[str, Any]]:
    return [room.to_dict() for room in api.core.list_rooms(member=member)]


@router.get("/rooms/{name}", response_model=RoomInfo, summary="Get a room", responses=problems(404))
async def get_room(name: RoomPath, api: Api) -> dict[str, Any]:
    return api.core.get_room(name).to_dict()


@router.post("/rooms/{name}/members", response_model=RoomInfo, summary="Join a room", responses=problems(404))
async def join_room(name: RoomPath, body: RoomJoin, api: Api) -> dict[str, Any]:
    return (await api.core.join_room(name, body.agent_id)).to_dict()


@router.delete("/rooms/{name}/members/{agent_id}", response_model=RoomInfo, summary="Leave a room",
               responses=problems(404))
async def leave_room(name: RoomPath, agent_id: Annotated[AgentId, Path()], api: Api) -> dict[str, Any]:
    return (await api.core.leave_room(name, agent_id)).to_dict()


@router.post("/rooms/{name}/messages", response_model=RoomPostInfo, status_code=202, summary="Post to a room",
             responses=problems(404))
async def post_to_room(name: RoomPath, body: RoomPostRequest, api: Api) -> dict[str, Any]:
    """Every member but the sender processes the post; their replies go to the room."""
    post = await api.core.post_to_room(name, body.sender, body.content, message_type=body.message_type,
                                       metadata=body.metadata)
    return post.to_dict()


@router.get("/rooms/{name}/messages", response_model=list[EnvelopeInfo], summary="A room's history",
            responses=problems(404))
async def room_history(
    name: RoomPath, api: Api, since_seq: SinceSeq = 0, limit: Limit = 100,
    message_type: Annotated[MessageType | None, Query()] = None,
) -> list[dict[str, Any]]:
    return [env.to_dict() for env in await api.core.room_history(name, since_seq=since_seq, limit=limit,
                                                                message_type=message_type)]
