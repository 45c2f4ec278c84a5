"""Every state change is an event: agent lifecycle, turns and tasks are published on the bus."""

from __future__ import annotations

import penguin.bus
import penguin.coordination
from penguin import PenguinCore


async def test_agent_turn_and_task_changes_are_published(core: PenguinCore) -> None:
    watch = core.subscribe(agent_id="ed", since_seq=0)
    await core.create_agent("ed")
    await core.update_agent("ed", system_prompt="You edit.")
    result = await core.chat("hello", agent_id="ed")
    task = await core.run_task("finish TASK_COMPLETE", agent_id="ed", max_iterations=1)
    await core.wait_task(task.id, 5)
    await core.remove_agent("ed")

    names = []
    while watch.queued:
        names.append((await watch.get(1)).content)
    assert names == [
        "agent.created", "agent.updated", "turn.completed",
        "task.running", "turn.completed", "task.running", "task.completed", "agent.removed",
    ]
    turns = await core.list_messages(channel="agent:ed", message_type="event")
    first_turn = next(e for e in turns if e.content == "turn.completed")
    assert first_turn.metadata["turn_id"] == result.turn_id
    assert first_turn.metadata["usage"] == result.usage.to_dict()
    statuses = await core.list_messages(channel="agent:ed", message_type="status")
    assert statuses[-1].correlation_id == task.id and statuses[-1].metadata["status"] == "completed"


async def test_stats_count_the_traffic(core: PenguinCore) -> None:
    await core.create_agent("a")
    receipt = await core.send_message("human", "a", "hi")
    await core.wait_receipt(receipt.message_id, timeout=5)
    stats = core.bus_stats()
    assert stats["published"] == stats["last_seq"] >= 5
    assert stats["write_errors"] == 0 and stats["open_receipts"] == 0
    assert isinstance(core.bus, penguin.bus.MessageBus)


def test_public_surface_is_pinned() -> None:
    assert sorted(penguin.bus.__all__) == sorted([
        "MESSAGE_TYPES", "BusClosed", "Delivery", "Envelope", "EnvelopeFilter", "GroupCommit", "IdFactory",
        "Inbox", "KVStore", "MemoryBus", "MessageBus", "MessageNotFound", "Outcome", "OverflowPolicy",
        "PersistFailed", "Receipt", "ReceiptNotFound", "ReceiptStatus", "Room", "RoomExists", "RoomNotFound",
        "RoomPost", "Rooms", "Subscription", "SubscriptionState", "SubscriberDisconnected",
    ])
    assert sorted(penguin.coordination.__all__) == sorted([
        "AgentTarget", "AgentUsage", "Answer", "CallableTarget", "ChainStep", "DelegationResult",
        "FallbackModel", "FallbackTarget", "Lineage", "Messenger", "MultiAgentCoordinator", "Request",
        "RouteResult", "RouteRule", "Router", "Sent", "SubAgents", "Target", "UsageLedger",
    ])
    for name in penguin.bus.__all__:
        assert hasattr(penguin.bus, name)
    for name in penguin.coordination.__all__:
        assert hasattr(penguin.coordination, name)
