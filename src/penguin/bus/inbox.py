"""``Inbox``: the durable per-agent inbox that turns messages into agent turns, with receipts.

A message to an agent is persisted with a ``queued`` receipt before ``submit`` returns. Each
agent has one consumer, so its messages are processed strictly in arrival (seq) order, while
different agents' consumers run in parallel. The consumer runs the message as a turn through the
injected turn runner (``PenguinCore.chat``); the receipt becomes ``delivered`` when that turn
actually starts (so a paused agent's message stays ``queued`` until it is resumed: ``chat`` waits
at the runtime's pause gate), then ``processed`` once the reply is published back to the sender
(or to the room), or ``failed`` with the reason. Each transition is persisted and published as a
``status`` envelope (``receipt.<state>``) to the sender, on channel ``agent:<recipient>``.

Messages are not fed through a bus subscription on purpose: subscriptions are bounded and may
drop; the inbox must not. The bus carries the observable copy; the receipts are the source of
truth. On restart, ``recover`` re-delivers every ``queued``/``delivered`` message. A ``delivered``
one may have finished its turn just before the process died, so the consumer first asks the
conversation whether a turn already answered that message id and, if so, only completes the
receipt: each message is processed exactly once.

Replies are published, not delivered: a reply to an agent (or to a room) does not start another
turn, which would make two agents talk to each other forever. Senders read replies through the
receipt (``reply_id``), ``Outcome`` or a bus subscription.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import sqlalchemy as sa

from penguin.bus._commit import GroupCommit
from penguin.bus.delivery import Delivery, Outcome
from penguin.bus.envelope import Envelope, IdFactory
from penguin.bus.errors import BusClosed, PersistFailed, ReceiptNotFound
from penguin.bus.memory import MemoryBus, row_envelope
from penguin.bus.receipts import Receipt, ReceiptStatus, row_receipt
from penguin.engine.results import ChatResult, TurnEvent
from penguin.errors import Conflict, PenguinError, RuntimeFailure, ValidationFailed
from penguin.storage.database import Database
from penguin.storage.schema import envelopes as env_t
from penguin.storage.schema import receipts as rcpt_t

TurnRunner = Callable[..., Awaitable[ChatResult]]
"""``PenguinCore.chat``: (text, *, agent_id, sender, channel, message_type, metadata, context, on_event)."""
ProcessedCheck = Callable[[str, str], Awaitable[str | None]]
"""(agent_id, message_id) → the reply of a turn that already processed that message, or None."""

_RECENT = 10_000
#: A receipt's transition, built once and run as driver SQL (it runs several times per message).
_UPDATE_RECEIPT = (
    sa.update(rcpt_t)
    .where(rcpt_t.c.message_id == sa.bindparam("b_message_id"), rcpt_t.c.recipient == sa.bindparam("b_recipient"))
    .values(
        status=sa.bindparam("b_status"),
        reason=sa.bindparam("b_reason"),
        reply_id=sa.bindparam("b_reply_id"),
        conversation_id=sa.bindparam("b_conversation_id"),
        turn_id=sa.bindparam("b_turn_id"),
        updated_at=sa.bindparam("b_updated_at"),
    )
)
MAX_LIST = 1000


class _Mailbox:
    __slots__ = ("consumer", "current", "items")

    def __init__(self) -> None:
        self.items: deque[Delivery] = deque()
        self.consumer: asyncio.Task[None] | None = None
        self.current: Delivery | None = None


class Inbox:
    """Per-agent durable inboxes and the receipts of every delivery."""

    def __init__(
        self,
        db: Database,
        writer: GroupCommit,
        bus: MemoryBus,
        *,
        tenant_id: str,
        run_turn: TurnRunner,
        agent_exists: Callable[[str], bool],
        find_processed: ProcessedCheck,
    ) -> None:
        self._db = db
        self._writer = writer
        self._bus = bus
        self._tenant = tenant_id
        self._run_turn = run_turn
        self._agent_exists = agent_exists
        self._find_processed = find_processed
        self._ids = IdFactory("msg")
        self._status_ids = IdFactory("evt")
        self._receipts: dict[tuple[str, str], Receipt] = {}
        self._recent: OrderedDict[tuple[str, str], Receipt] = OrderedDict()
        self._deliveries: dict[tuple[str, str], Delivery] = {}
        self._boxes: dict[str, _Mailbox] = {}
        self._closed = True

    async def start(self) -> None:
        self._closed = False
        await self.recover()

    # Accepting messages ----------------------------------------------------------------------

    async def submit(self, env: Envelope, recipients: Sequence[str], *, addressed_to: str,
                     room: str | None = None) -> list[Delivery]:
        """Persist a ``queued`` receipt per recipient, then hand the message to their inboxes.

        ``env`` must already be published (it carries its seq). Returns once the receipts are
        committed.

        Raises:
            BusClosed: the inbox is stopped.
            Conflict: the message was already submitted to one of these recipients.
            PersistFailed: the receipts could not be stored (nothing was queued).
        """
        if self._closed:
            raise BusClosed("the inbox is stopped; start the core again before sending")
        deliveries: list[Delivery] = []
        for agent_id in dict.fromkeys(recipients):
            key = (env.id, agent_id)
            if key in self._receipts or key in self._recent:
                raise Conflict(f"message {env.id!r} was already sent to {agent_id!r}", field="message_id")
            receipt = self._new_receipt(env, agent_id, ReceiptStatus.QUEUED, addressed_to)
            self._receipts[key] = receipt
            self._writer.insert(rcpt_t, receipt.to_dict())
            deliveries.append(Delivery(env, agent_id, room=room))
        try:
            await self._writer.commit()
        except PersistFailed:
            for d in deliveries:
                self._receipts.pop(d.key, None)
            raise
        for d in deliveries:
            self._deliveries[d.key] = d
            await self._publish_status(self._receipts[d.key])
            self._enqueue(d)
        return deliveries

    async def record_published(self, env: Envelope, *, addressed_to: str) -> Receipt:
        """Store the final ``published`` receipt of a message no agent processes (to ``human``)."""
        receipt = self._new_receipt(env, addressed_to, ReceiptStatus.PUBLISHED, addressed_to)
        self._writer.insert(rcpt_t, receipt.to_dict())
        await self._writer.commit()
        self._remember(receipt)
        return receipt

    def _new_receipt(self, env: Envelope, recipient: str, status: ReceiptStatus, addressed_to: str) -> Receipt:
        return Receipt(
            message_id=env.id, recipient=recipient, sender=env.sender, status=status, addressed_to=addressed_to,
            channel=env.channel, message_type=env.message_type, seq=env.seq, tenant_id=self._tenant,
        )

    # Waiting and abandoning ------------------------------------------------------------------

    async def wait(self, delivery: Delivery, timeout: float | None = None) -> Outcome:
        """The delivery's outcome; after ``timeout`` seconds, its current state (``timed_out``)."""
        try:
            return await asyncio.wait_for(asyncio.shield(delivery.future), timeout)
        except TimeoutError:
            return Outcome(receipt=self.current(delivery.key), timed_out=True)

    async def wait_receipt(self, message_id: str, recipient: str | None = None, *,
                           timeout: float | None = None) -> Receipt:
        """The receipt once it is final (processed, failed, published), or as it stands after ``timeout``.

        Raises:
            ReceiptNotFound, ValidationFailed: as ``get_receipt``.
        """
        receipt = await self.get_receipt(message_id, recipient)
        delivery = self._deliveries.get(receipt.key)
        if delivery is None or receipt.status.final:
            return receipt
        return (await self.wait(delivery, timeout)).receipt

    def current(self, key: tuple[str, str]) -> Receipt:
        receipt = self._receipts.get(key) or self._recent.get(key)
        if receipt is None:
            raise ReceiptNotFound(f"no receipt for message {key[0]!r} to {key[1]!r}", field="message_id")
        return receipt

    async def abandon(self, delivery: Delivery, reason: str) -> Outcome:
        """Stop a delivery that has not ended: dequeue it, or cancel its running turn; it fails."""
        if delivery.future.done():
            return delivery.future.result()
        delivery.abandoned = reason
        task = delivery.task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait((task,))
        if not delivery.future.done():
            # Never started (still in line, or cancelled before its first step).
            box = self._boxes.get(delivery.recipient)
            if box is not None and delivery in box.items:
                box.items.remove(delivery)
            await self._fail(delivery, reason, None)
        return delivery.future.result()

    async def drop_agent(self, agent_id: str, reason: str = "the agent was removed") -> None:
        """Fail every message waiting for ``agent_id`` and stop its consumer."""
        box = self._boxes.pop(agent_id, None)
        if box is None:
            return
        for d in list(box.items):
            d.abandoned = reason
            await self._fail(d, reason, None)
        box.items.clear()
        if box.current is not None:
            box.current.abandoned = reason
        if box.consumer is not None:
            box.consumer.cancel()
            await asyncio.wait((box.consumer,))

    def pending_total(self) -> int:
        """Messages waiting for or being processed by any agent."""
        return sum(len(box.items) + (box.current is not None) for box in self._boxes.values())

    def pending(self, agent_id: str) -> int:
        """Messages waiting for or being processed by ``agent_id``."""
        box = self._boxes.get(agent_id)
        return 0 if box is None else len(box.items) + (box.current is not None)

    # The consumer ----------------------------------------------------------------------------

    def _enqueue(self, delivery: Delivery) -> None:
        box = self._boxes.get(delivery.recipient)
        if box is None:
            box = self._boxes[delivery.recipient] = _Mailbox()
        box.items.append(delivery)
        if box.consumer is None:
            # A fresh context: the consumer outlives the request that started it, and must not
            # lend that request's id to later messages' log lines (each delivery has its own).
            box.consumer = asyncio.create_task(self._consume(delivery.recipient, box),
                                               name=f"penguin-inbox-{delivery.recipient}",
                                               context=contextvars.Context())

    async def _consume(self, agent_id: str, box: _Mailbox) -> None:
        """Process one agent's messages one at a time, in order (each in its own child task, so a
        sender can cancel one delivery without killing the consumer)."""
        try:
            while box.items:
                delivery = box.current = box.items.popleft()
                delivery.task = asyncio.create_task(self._deliver(delivery), name=f"penguin-delivery-{delivery.env.id}",
                                                    context=delivery.context)
                try:
                    await asyncio.wait((delivery.task,))
                except asyncio.CancelledError:
                    delivery.task.cancel()
                    await asyncio.wait((delivery.task,))
                    raise
                box.current = None
        finally:
            box.current = None
            if box.consumer is asyncio.current_task():
                box.consumer = None
                if not box.items and self._boxes.get(agent_id) is box:
                    del self._boxes[agent_id]

    async def _deliver(self, d: Delivery) -> None:
        key = d.key
        receipt = self._receipts.get(key)
        if receipt is None:
            return  # already final: a duplicate re-delivery
        env = d.env
        if not self._agent_exists(d.recipient):
            # Removed while the message was being accepted: never let the turn re-create it.
            await self._fail(d, "the agent was removed", None)
            return
        try:
            if d.redelivered and receipt.status is ReceiptStatus.DELIVERED:
                text = await self._find_processed(d.recipient, env.id)
                if text is not None:
                    reply = await self._publish_reply(d, text, None)
                    await self._advance(key, ReceiptStatus.PROCESSED, reply_id=reply.id,
                                        reason="recovered: its turn had completed before a restart")
                    self._resolve(d, Outcome(receipt=self.current(key), reply=reply))
                    return

            async def on_event(event: TurnEvent) -> None:
                current = self._receipts.get(key)
                if event.type == "start" and current is not None and current.status is ReceiptStatus.QUEUED:
                    await self._advance(key, ReceiptStatus.DELIVERED, conversation_id=event.conversation_id,
                                        turn_id=str(event.data.get("turn_id") or "") or None)

            context = env.metadata.get("context")
            result = await self._run_turn(
                env.content,
                agent_id=d.recipient,
                sender=env.sender,
                channel=env.channel,
                message_type=env.message_type,
                metadata={**{k: v for k, v in env.metadata.items() if k != "context"},
                          "message_id": env.id, "bus_seq": env.seq},
                context=context if isinstance(context, dict) else None,
                on_event=on_event,
            )
        except asyncio.CancelledError:
            if d.abandoned is None:
                raise  # shutdown: the receipt stays queued/delivered and is re-delivered on restart
            await self._fail(d, d.abandoned, None)
            return
        except PenguinError as exc:
            await self._fail(d, exc.detail, exc)
            return
        except Exception as exc:  # a bug in a turn must reach the receipt, not vanish in a task
            await self._fail(d, f"{type(exc).__name__}: {exc}", RuntimeFailure(f"{type(exc).__name__}: {exc}"))
            return
        reply = await self._publish_reply(d, result.text, result)
        await self._advance(key, ReceiptStatus.PROCESSED, reply_id=reply.id,
                            conversation_id=result.conversation_id, turn_id=result.turn_id)
        self._resolve(d, Outcome(receipt=self.current(key), result=result, reply=reply))

    async def _publish_reply(self, d: Delivery, text: str, result: ChatResult | None) -> Envelope:
        env = d.env
        metadata: dict[str, Any] = {"in_reply_to": env.id}
        if result is not None:
            metadata.update(turn_id=result.turn_id, conversation_id=result.conversation_id,
                            usage=result.usage.to_dict(), status=result.status)
        return await self._bus.publish(Envelope(
            id=self._ids(), sender=d.recipient, recipient=None if d.room else env.sender, channel=env.channel,
            message_type="message", content=text, metadata=metadata, tenant_id=self._tenant,
            correlation_id=env.correlation_id or env.id, causation_id=env.id,
        ))

    async def _fail(self, d: Delivery, reason: str, error: PenguinError | None) -> None:
        key = d.key
        if key in self._receipts:
            await self._advance(key, ReceiptStatus.FAILED, reason=reason)
        self._resolve(d, Outcome(receipt=self.current(key), error=error or RuntimeFailure(reason)))

    def _resolve(self, d: Delivery, outcome: Outcome) -> None:
        self._deliveries.pop(d.key, None)
        if not d.future.done():
            d.future.set_result(outcome)

    # Receipt state ---------------------------------------------------------------------------

    async def _advance(self, key: tuple[str, str], status: ReceiptStatus, **changes: Any) -> None:
        receipt = self._receipts[key].advance(status, **changes)
        if status.final:
            del self._receipts[key]
            self._remember(receipt)
        else:
            self._receipts[key] = receipt
        params = {f"b_{k}": getattr(receipt, k) for k in ("reason", "reply_id", "conversation_id", "turn_id",
                                                           "updated_at")}
        params["b_status"] = status.value
        params["b_message_id"], params["b_recipient"] = key
        statements = self._writer.statements

        def update(conn: sa.Connection) -> None:
            statements.execute(conn, _UPDATE_RECEIPT, params)

        self._writer.run(update)
        await self._publish_status(receipt)

    async def _publish_status(self, receipt: Receipt) -> None:
        await self._bus.publish(Envelope(
            id=self._status_ids(), sender="system", recipient=receipt.sender, channel=f"agent:{receipt.recipient}",
            message_type="status", content=f"receipt.{receipt.status.value}", metadata=receipt.to_dict(),
            tenant_id=self._tenant, causation_id=receipt.message_id,
        ))

    def _remember(self, receipt: Receipt) -> None:
        self._recent[receipt.key] = receipt
        while len(self._recent) > _RECENT:
            self._recent.popitem(last=False)

    # Reading receipts ------------------------------------------------------------------------

    async def get_receipt(self, message_id: str, recipient: str | None = None) -> Receipt:
        """The receipt of a message (to ``recipient`` when it went to several).

        Raises:
            ReceiptNotFound: no such message (or not to that recipient).
            ValidationFailed: it went to several recipients and none was named.
        """
        if recipient is not None:
            found = self._receipts.get((message_id, recipient)) or self._recent.get((message_id, recipient))
            if found is not None:
                return found
        matches = await self.list_receipts(message_id=message_id, recipient=recipient, limit=MAX_LIST)
        if not matches:
            raise ReceiptNotFound(f"no receipt for message {str(message_id)[:80]!r}", field="message_id")
        if len(matches) > 1:
            raise ValidationFailed(
                f"message {message_id!r} went to {len(matches)} recipients; name one (recipient=...) or list them",
                field="recipient",
            )
        return matches[0]

    async def list_receipts(
        self,
        *,
        sender: str | None = None,
        recipient: str | None = None,
        message_id: str | None = None,
        status: str | None = None,
        since_seq: int = 0,
        limit: int = 100,
    ) -> list[Receipt]:
        """Receipts matching every given field, in arrival order (seq > ``since_seq``)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise ValidationFailed(f"limit must be between 1 and {MAX_LIST}", field="limit")
        if status is not None and status not in set(ReceiptStatus):
            raise ValidationFailed(f"status must be one of {[s.value for s in ReceiptStatus]}", field="status")
        await self._writer.commit()
        c = rcpt_t.c
        query = sa.select(rcpt_t).where(c.tenant_id == self._tenant, c.seq > since_seq)
        for column, value in (("sender", sender), ("recipient", recipient), ("message_id", message_id),
                              ("status", status)):
            if value is not None:
                query = query.where(c[column] == value)
        async with self._db.read() as conn:
            rows = await conn.execute(query.order_by(c.seq, c.recipient).limit(limit))
            stored = [row_receipt(r) for r in rows]
        # A transition made while the query ran is newer in memory than in the rows read.
        return [self._receipts.get(r.key) or self._recent.get(r.key) or r for r in stored]

    # Restart ---------------------------------------------------------------------------------

    async def recover(self) -> int:
        """Re-deliver messages a previous process left ``queued`` or ``delivered``; returns how many."""
        c = rcpt_t.c
        async with self._db.read() as conn:
            rows = await conn.execute(
                sa.select(rcpt_t)
                .where(c.tenant_id == self._tenant, c.status.in_(["queued", "delivered"]))
                .order_by(c.seq, c.recipient)
            )
            receipts = [row_receipt(r) for r in rows]
            envelopes: dict[str, Envelope] = {}
            ids = sorted({r.message_id for r in receipts})
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for row in await conn.execute(sa.select(env_t).where(env_t.c.id.in_(chunk))):
                    envelopes[row.id] = row_envelope(row)
        count = 0
        for receipt in receipts:
            if receipt.key in self._receipts or receipt.key in self._recent:
                continue
            env = envelopes.get(receipt.message_id)
            self._receipts[receipt.key] = receipt
            if env is None:
                await self._advance(receipt.key, ReceiptStatus.FAILED, reason="the message was lost before a restart")
                continue
            d = Delivery(env, receipt.recipient, room=env.channel if env.recipient is None else None,
                         redelivered=True)
            if not self._agent_exists(receipt.recipient):
                await self._fail(d, "the agent was removed while the message waited", None)
                continue
            self._deliveries[d.key] = d
            self._enqueue(d)
            count += 1
        return count

    async def aclose(self) -> None:
        """Stop every consumer. Unfinished messages keep their receipts and are re-delivered on restart."""
        self._closed = True
        consumers = [b.consumer for b in self._boxes.values() if b.consumer is not None]
        for task in consumers:
            task.cancel()
        if consumers:
            await asyncio.wait(consumers)
        self._boxes.clear()
        stopped = BusClosed("the inbox stopped; the message stays queued and is delivered after a restart")
        for d in list(self._deliveries.values()):
            if not d.future.done():
                d.future.set_result(Outcome(receipt=self.current(d.key), error=stopped))
        self._deliveries.clear()
        self._receipts.clear()

    def stats(self) -> dict[str, int]:
        return {
            "inboxes": len(self._boxes),
            "pending": sum(len(b.items) + (b.current is not None) for b in self._boxes.values()),
            "open_receipts": len(self._receipts),
        }

