"""``PenguinClient`` methods of the multi-agent routes: messages, rooms, coordination, sub-agents,
shared memory and tool approvals. Mixed into ``PenguinClient``; each method is one route."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from penguin.api.client_base import ClientBase, query, seg
from penguin.api.schemas import AgentInfo
from penguin.api.schemas_orchestration import (
    AgentUsageInfo,
    AnswerInfo,
    ApprovalInfo,
    DelegationInfo,
    EnvelopeInfo,
    MemoryHitInfo,
    MemoryInfo,
    MemoryStatsInfo,
    ReceiptInfo,
    RoleMembers,
    RoomInfo,
    RoomPostInfo,
)
from penguin.api.schemas_telemetry import TelemetrySummaryInfo

_FINAL_RECEIPTS = ("processed", "failed")


class OrchestrationMethods(ClientBase):
    # Messages --------------------------------------------------------------------------------

    async def send_message(self, recipient: str, content: str, *, sender: str = "human", channel: str | None = None,
                           message_type: str = "message", metadata: Mapping[str, Any] | None = None,
                           correlation_id: str | None = None) -> ReceiptInfo:
        """Queue a message for an agent id, ``role:<name>`` or ``human``; returns its ``queued`` receipt."""
        body = query(recipient=recipient, content=content, sender=sender, channel=channel, message_type=message_type,
                     metadata=dict(metadata) if metadata is not None else None, correlation_id=correlation_id)
        return await self._one(ReceiptInfo, "POST", "/messages", json=body)

    async def get_message(self, message_id: str) -> EnvelopeInfo:
        return await self._one(EnvelopeInfo, "GET", f"/messages/{seg(message_id)}")

    async def get_receipt(self, message_id: str, recipient: str | None = None) -> ReceiptInfo:
        return await self._one(ReceiptInfo, "GET", f"/messages/{seg(message_id)}/receipt",
                               params=query(recipient=recipient))

    async def wait_receipt(self, message_id: str, recipient: str | None = None, *, timeout: float = 60.0,
                           interval: float = 0.05) -> ReceiptInfo:
        """Poll until the receipt is ``processed`` or ``failed`` (or ``timeout`` seconds passed)."""
        async with asyncio.timeout(timeout):
            while True:
                receipt = await self.get_receipt(message_id, recipient)
                if receipt.status in _FINAL_RECEIPTS:
                    return receipt
                await asyncio.sleep(interval)

    async def list_messages(self, *, agent_id: str | None = None, sender: str | None = None,
                            recipient: str | None = None, channel: str | None = None,
                            message_type: str | None = None, since_seq: int = 0,
                            limit: int = 100) -> list[EnvelopeInfo]:
        params = query(agent_id=agent_id, sender=sender, recipient=recipient, channel=channel,
                       message_type=message_type, since_seq=since_seq, limit=limit)
        return await self._many(EnvelopeInfo, "/messages", params=params)

    async def list_receipts(self, *, sender: str | None = None, recipient: str | None = None,
                            message_id: str | None = None, status: str | None = None, since_seq: int = 0,
                            limit: int = 100) -> list[ReceiptInfo]:
        params = query(sender=sender, recipient=recipient, message_id=message_id, status=status,
                       since_seq=since_seq, limit=limit)
        return await self._many(ReceiptInfo, "/receipts", params=params)

    # Rooms -----------------------------------------------------------------------------------

    async def create_room(self, name: str, *, members: Sequence[str] = (), created_by: str | None = None,
                          metadata: Mapping[str, Any] | None = None) -> RoomInfo:
        body = query(name=name, members=list(members), created_by=created_by,
                     metadata=dict(metadata) if metadata is not None else None)
        return await self._one(RoomInfo, "POST", "/rooms", json=body)

    async def list_rooms(self, member: str | None = None) -> list[RoomInfo]:
        return await self._many(RoomInfo, "/rooms", params=query(member=member))

    async def get_room(self, name: str) -> RoomInfo:
        return await self._one(RoomInfo, "GET", f"/rooms/{seg(name)}")

    async def join_room(self, name: str, agent_id: str) -> RoomInfo:
        return await self._one(RoomInfo, "POST", f"/rooms/{seg(name)}/members", json={"agent_id": agent_id})

    async def leave_room(self, name: str, agent_id: str) -> RoomInfo:
        return await self._one(RoomInfo, "DELETE", f"/rooms/{seg(name)}/members/{seg(agent_id)}")

    async def post_to_room(self, name: str, content: str, *, sender: str = "human", message_type: str = "message",
                           metadata: Mapping[str, Any] | None = None) -> RoomPostInfo:
        body = query(content=content, sender=sender, message_type=message_type,
                     metadata=dict(metadata) if metadata is not None else None)
        return await self._one(RoomPostInfo, "POST", f"/rooms/{seg(name)}/messages", json=body)

    async def room_history(self, name: str, *, since_seq: int = 0, limit: int = 100,
                           message_type: str | None = None) -> list[EnvelopeInfo]:
        params = query(since_seq=since_seq, limit=limit, message_type=message_type)
        return await self._many(EnvelopeInfo, f"/rooms/{seg(name)}/messages", params=params)

    # Coordination ----------------------------------------------------------------------------

    async def roles(self) -> dict[str, list[str]]:
        return dict(await self._request("GET", "/coordinator/roles"))

    async def assign_role(self, role: str, agent_ids: Sequence[str]) -> RoleMembers:
        return await self._one(RoleMembers, "PUT", f"/coordinator/roles/{seg(role)}",
                               json={"agent_ids": list(agent_ids)})

    async def unassign_role(self, role: str, agent_id: str | None = None) -> RoleMembers:
        return await self._one(RoleMembers, "DELETE", f"/coordinator/roles/{seg(role)}",
                               params=query(agent_id=agent_id))

    async def round_robin(self, role: str, text: str, **options: Any) -> AnswerInfo:
        """Ask the role's next agent. Options: sender, timeout, metadata, context."""
        return await self._one(AnswerInfo, "POST", "/coordinator/round-robin", json={"role": role, "text": text,
                                                                                    **options})

    async def role_chain(self, roles: Sequence[str], text: str, **options: Any) -> dict[str, Any]:
        """Each role's agent in order, fed the previous reply; returns the lineage (steps, output)."""
        return dict(await self._request("POST", "/coordinator/chain",
                                        json={"roles": list(roles), "text": text, **options}))

    async def broadcast(self, text: str, **options: Any) -> list[AnswerInfo]:
        """Send to ``roles`` and ``agents`` (lists), or a ``room``; one answer per target."""
        answers = await self._request("POST", "/coordinator/broadcast", json={"text": text, **options})
        return [AnswerInfo.model_validate(a) for a in answers]

    async def set_routes(self, rules: Sequence[Mapping[str, Any]], default: Sequence[str] = ()) -> dict[str, Any]:
        body = {"rules": [dict(r) for r in rules], "default": list(default)}
        return dict(await self._request("PUT", "/coordinator/routes", json=body))

    async def route(self, text: str, **options: Any) -> dict[str, Any]:
        """Pick the target by policy (first matching rule, then fallbacks) and ask it."""
        return dict(await self._request("POST", "/coordinator/route", json={"text": text, **options}))

    # Sub-agents ------------------------------------------------------------------------------

    async def spawn_agent(self, parent_id: str, child_id: str | None = None, **overrides: Any) -> AgentInfo:
        body = {**overrides, **({"child_id": child_id} if child_id is not None else {})}
        return await self._one(AgentInfo, "POST", f"/agents/{seg(parent_id)}/subagents", json=body)

    async def list_subagents(self, parent_id: str) -> list[AgentInfo]:
        return await self._many(AgentInfo, f"/agents/{seg(parent_id)}/subagents")

    async def delegate(self, parent_id: str, child_id: str, task: str, **options: Any) -> DelegationInfo:
        """Give ``task`` to a sub-agent. Options: wait, timeout, max_iterations, context."""
        return await self._one(DelegationInfo, "POST", f"/agents/{seg(parent_id)}/delegate",
                               json={"child_id": child_id, "task": task, **options})

    async def delegation_result(self, task_id: str, timeout: float | None = None) -> DelegationInfo:
        return await self._one(DelegationInfo, "GET", f"/delegations/{seg(task_id)}", params=query(timeout=timeout))

    async def cancel_subagent(self, child_id: str) -> list[str]:
        return list(await self._request("POST", f"/agents/{seg(child_id)}/delegations/cancel"))

    async def agent_usage(self, agent_id: str) -> AgentUsageInfo:
        return await self._one(AgentUsageInfo, "GET", f"/agents/{seg(agent_id)}/usage")

    # Memory ----------------------------------------------------------------------------------

    async def memory_add(self, text: str, **fields: Any) -> MemoryInfo:
        """Store a memory. Fields: agent_id (author), scope, tags, metadata, source_conversation_id, ..."""
        return await self._one(MemoryInfo, "POST", "/memory", json={"text": text, **fields})

    async def memory_search(self, q: str, **filters: Any) -> list[MemoryHitInfo]:
        """Best first. Filters: agent_id (caller), k, author, scope, tags, since, until, mode."""
        return await self._many(MemoryHitInfo, "/memory/search", params=query(q=q, **filters))

    async def memory_list(self, **filters: Any) -> list[MemoryInfo]:
        return await self._many(MemoryInfo, "/memory", params=query(**filters))

    async def memory_get(self, memory_id: str, agent_id: str | None = None) -> MemoryInfo:
        return await self._one(MemoryInfo, "GET", f"/memory/{seg(memory_id)}", params=query(agent_id=agent_id))

    async def memory_update(self, memory_id: str, agent_id: str | None = None, **changes: Any) -> MemoryInfo:
        return await self._one(MemoryInfo, "PATCH", f"/memory/{seg(memory_id)}", json=changes,
                               params=query(agent_id=agent_id))

    async def memory_delete(self, memory_id: str, agent_id: str | None = None) -> MemoryInfo:
        return await self._one(MemoryInfo, "DELETE", f"/memory/{seg(memory_id)}", params=query(agent_id=agent_id))

    async def memory_stats(self) -> MemoryStatsInfo:
        return await self._one(MemoryStatsInfo, "GET", "/memory/stats")

    # Tools -----------------------------------------------------------------------------------

    async def pending_approvals(self, agent_id: str | None = None) -> list[ApprovalInfo]:
        return await self._many(ApprovalInfo, "/approvals", params=query(agent_id=agent_id))

    async def approve_tool_call(self, approval_id: str) -> ApprovalInfo:
        return await self._one(ApprovalInfo, "POST", f"/approvals/{seg(approval_id)}/approve")

    async def deny_tool_call(self, approval_id: str, reason: str = "") -> ApprovalInfo:
        return await self._one(ApprovalInfo, "POST", f"/approvals/{seg(approval_id)}/deny", json={"reason": reason})

    async def tool_stats(self, agent_id: str | None = None) -> dict[str, Any]:
        return dict(await self._request("GET", "/tools/stats", params=query(agent_id=agent_id)))

    # Telemetry -------------------------------------------------------------------------------

    async def get_telemetry_summary(self, agent_id: str | None = None) -> TelemetrySummaryInfo:
        """Message, agent, room, task, token and latency statistics (one agent's with ``agent_id``)."""
        return await self._one(TelemetrySummaryInfo, "GET", "/telemetry", params=query(agent_id=agent_id))
