"""``ConversationStore``: conversations, the flat message log and checkpoints.

Writes go through one transaction per call (a turn's messages together). The full history of
recently used conversations is cached in memory so the turn loop never re-reads it; paging and
filtering for the API always query the database with a cursor.

Rollback never deletes: messages after the checkpoint move to a new ``archive`` conversation
(with copies of the messages before it, so the archive reads as a whole conversation) and the
original conversation continues from the checkpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from penguin.conversations.messages import Checkpoint, Conversation, Message
from penguin.errors import CheckpointNotFound, ConversationNotFound, ValidationFailed
from penguin.naming import new_id
from penguin.storage.database import Database
from penguin.storage.schema import checkpoints as cp_t
from penguin.storage.schema import conversations as conv_t
from penguin.storage.schema import messages as msg_t
from penguin.storage.statements import DriverStatements

_HISTORY_CACHE = 512
MAX_PAGE = 1000
# Built once: constructing a statement per call (and its cache key) cost more than running it.
_INSERT_MESSAGES = sa.insert(msg_t)
_INSERT_CONVERSATION = sa.insert(conv_t)
#: An agent's most recent ``main`` conversation (looked up on its first turn).
_MAIN_CONVERSATION = (
    sa.select(conv_t)
    .where(
        conv_t.c.agent_id == sa.bindparam("agent_id"),
        conv_t.c.kind == "main",
        conv_t.c.tenant_id == sa.bindparam("tenant_id"),
    )
    .order_by(conv_t.c.created_at.desc(), conv_t.c.id.desc())
    .limit(1)
)
_BUMP_CONVERSATION = (
    sa.update(conv_t)
    .where(conv_t.c.id == sa.bindparam("b_id"))
    .values(last_seq=sa.bindparam("b_last_seq"), updated_at=sa.bindparam("b_updated_at"))
)


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _loads(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def _message_row(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "tenant_id": m.tenant_id,
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "agent_id": m.agent_id,
        "sender": m.sender,
        "recipient_id": m.recipient_id,
        "role": m.role,
        "message_type": m.message_type,
        "channel": m.channel,
        "content": m.content,
        "tool_calls": _dumps(m.tool_calls),
        "tool_call_id": m.tool_call_id,
        "name": m.name,
        "usage": _dumps(m.usage),
        "turn_id": m.turn_id,
        "metadata": _dumps(m.metadata),
        "created_at": m.created_at,
    }


def _row_message(r: Row[Any]) -> Message:
    return Message(
        id=r.id,
        conversation_id=r.conversation_id,
        seq=r.seq,
        agent_id=r.agent_id,
        sender=r.sender,
        recipient_id=r.recipient_id,
        role=r.role,
        message_type=r.message_type,
        channel=r.channel,
        content=r.content,
        tool_calls=_loads(r.tool_calls),
        tool_call_id=r.tool_call_id,
        name=r.name,
        usage=_loads(r.usage),
        turn_id=r.turn_id,
        metadata=_loads(r.metadata),
        created_at=r.created_at,
        tenant_id=r.tenant_id,
    )


def _row_conversation(r: Row[Any]) -> Conversation:
    return Conversation(
        id=r.id,
        agent_id=r.agent_id,
        tenant_id=r.tenant_id,
        title=r.title,
        parent_id=r.parent_id,
        checkpoint_id=r.checkpoint_id,
        kind=r.kind,
        run_mode=r.run_mode,
        last_seq=r.last_seq,
        metadata=orjson.loads(r.metadata),
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def _row_checkpoint(r: Row[Any]) -> Checkpoint:
    return Checkpoint(
        id=r.id,
        conversation_id=r.conversation_id,
        agent_id=r.agent_id,
        name=r.name,
        seq=r.seq,
        created_at=r.created_at,
        tenant_id=r.tenant_id,
    )


class ConversationStore:
    def __init__(self, db: Database, *, tenant_id: str) -> None:
        self._db = db
        self._tenant = tenant_id
        self._convs: dict[str, Conversation] = {}
        self._default: dict[str, str] = {}
        self._history: OrderedDict[str, list[Message]] = OrderedDict()
        # Serialises the first lookup of an agent's main conversation so concurrent first chats
        # neither create two conversations nor overtake each other (asyncio.Lock is FIFO).
        self._default_locks: dict[str, asyncio.Lock] = {}
        #: The append path's INSERT and UPDATE, compiled once (``storage/statements.py``).
        self._statements = DriverStatements()

    # Conversations ---------------------------------------------------------------------------

    async def create(
        self,
        agent_id: str,
        *,
        title: str = "",
        kind: str = "main",
        parent_id: str | None = None,
        checkpoint_id: str | None = None,
        run_mode: str = "chat",
        metadata: dict[str, Any] | None = None,
        conn: AsyncConnection | None = None,
    ) -> Conversation:
        conv = Conversation(
            id=new_id("conv"),
            agent_id=agent_id,
            tenant_id=self._tenant,
            title=title,
            parent_id=parent_id,
            checkpoint_id=checkpoint_id,
            kind=kind,
            run_mode=run_mode,
            metadata=metadata or {},
        )
        values = {
            "id": conv.id,
            "tenant_id": conv.tenant_id,
            "agent_id": agent_id,
            "title": title,
            "parent_id": parent_id,
            "checkpoint_id": checkpoint_id,
            "kind": kind,
            "run_mode": run_mode,
            "last_seq": 0,
            "metadata": orjson.dumps(conv.metadata).decode(),
            "created_at": conv.created_at,
            "updated_at": conv.updated_at,
        }
        if conn is not None:
            await conn.execute(sa.insert(conv_t).values(**values))
        else:
            try:
                await self._db.write(lambda c: c.execute(_INSERT_CONVERSATION, values), inline=True)
            except asyncio.CancelledError:
                self._created(conv)  # ``write`` raises a cancellation only once committed
                raise
        self._created(conv)
        return conv

    def _created(self, conv: Conversation) -> None:
        self._convs[conv.id] = conv
        self._history[conv.id] = []

    async def get(self, conversation_id: str) -> Conversation:
        conv = self._convs.get(conversation_id)
        if conv is not None:
            return conv
        if not isinstance(conversation_id, str) or not 0 < len(conversation_id) <= 64:
            raise ConversationNotFound(f"no conversation {str(conversation_id)[:80]!r}", field="conversation_id")
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(conv_t).where(conv_t.c.id == conversation_id, conv_t.c.tenant_id == self._tenant)
                )
            ).first()
        if row is None:
            raise ConversationNotFound(f"no conversation {conversation_id!r}", field="conversation_id")
        conv = _row_conversation(row)
        self._convs[conv.id] = conv
        return conv

    async def default_for(self, agent_id: str) -> Conversation:
        """The agent's main conversation (its most recent ``main`` one), created on first use."""
        conv_id = self._default.get(agent_id)
        if conv_id is not None:
            return await self.get(conv_id)
        lock = self._default_locks.setdefault(agent_id, asyncio.Lock())
        async with lock:
            conv_id = self._default.get(agent_id)
            if conv_id is not None:
                return await self.get(conv_id)
            conv = await self._load_or_create_default(agent_id)
        self._default_locks.pop(agent_id, None)
        return conv

    async def _load_or_create_default(self, agent_id: str) -> Conversation:
        params = {"agent_id": agent_id, "tenant_id": self._tenant}
        row = await self._db.query(lambda conn: conn.execute(_MAIN_CONVERSATION, params).first())
        if row is not None:
            conv = _row_conversation(row)
            self._convs.setdefault(conv.id, conv)
            conv = self._convs[conv.id]
        else:
            conv = await self.create(agent_id)
        self._default[agent_id] = conv.id
        return conv

    async def list_for_agent(self, agent_id: str, *, limit: int = 100) -> list[Conversation]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                sa.select(conv_t)
                .where(conv_t.c.agent_id == agent_id, conv_t.c.tenant_id == self._tenant)
                .order_by(conv_t.c.created_at, conv_t.c.id)
                .limit(limit)
            )
            out = []
            for row in rows:
                cached = self._convs.get(row.id)
                out.append(cached if cached is not None else _row_conversation(row))
        return out

    def forget_agent(self, agent_id: str) -> None:
        """Drop cached state of a removed agent (its rows stay for audit)."""
        self._default.pop(agent_id, None)
        for conv_id in [c.id for c in self._convs.values() if c.agent_id == agent_id]:
            self._convs.pop(conv_id, None)
            self._history.pop(conv_id, None)

    # Messages --------------------------------------------------------------------------------

    async def messages(self, conversation_id: str) -> list[Message]:
        """The whole history in seq order (cached; callers must not mutate the list)."""
        cached = self._history.get(conversation_id)
        if cached is not None:
            self._history.move_to_end(conversation_id)
            return cached
        await self.get(conversation_id)
        async with self._db.read() as conn:
            rows = await conn.execute(
                sa.select(msg_t).where(msg_t.c.conversation_id == conversation_id).order_by(msg_t.c.seq)
            )
            history = [_row_message(r) for r in rows]
        self._remember(conversation_id, history)
        return history

    def _remember(self, conversation_id: str, history: list[Message]) -> None:
        self._history[conversation_id] = history
        self._history.move_to_end(conversation_id)
        while len(self._history) > _HISTORY_CACHE:
            self._history.popitem(last=False)

    async def append(self, conversation_id: str, new: Sequence[Message]) -> None:
        """Persist ``new`` in one transaction, assigning gapless seq numbers.

        The caller holds the conversation's writer slot (one writer per conversation).
        """
        if not new:
            return
        conv = await self.get(conversation_id)
        history = await self.messages(conversation_id)
        seq = conv.last_seq
        for m in new:
            seq += 1
            m.seq = seq
            m.conversation_id = conversation_id
            m.tenant_id = self._tenant
        now = time.time()
        rows = [_message_row(m) for m in new]
        bump = {"b_id": conversation_id, "b_last_seq": seq, "b_updated_at": now}

        statements = self._statements

        def write(conn: sa.Connection) -> None:
            statements.execute_many(conn, _INSERT_MESSAGES, rows)
            statements.execute(conn, _BUMP_CONVERSATION, bump)

        try:
            await self._db.write(write, inline=True)
        except asyncio.CancelledError:
            # ``write`` lets a cancellation through only once the rows are committed.
            self._appended(conv, history, new, seq, now)
            raise
        self._appended(conv, history, new, seq, now)

    @staticmethod
    def _appended(conv: Conversation, history: list[Message], new: Sequence[Message], seq: int, now: float) -> None:
        conv.last_seq = seq
        conv.updated_at = now
        history.extend(new)

    async def page(
        self,
        conversation_id: str,
        *,
        after_seq: int = 0,
        limit: int = 100,
        agent_id: str | None = None,
        channel: str | None = None,
        message_type: str | None = None,
    ) -> list[Message]:
        """Messages with seq > ``after_seq`` matching the filters, at most ``limit`` (cursor paging)."""
        if limit < 1 or limit > MAX_PAGE:
            raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        if after_seq < 0:
            raise ValidationFailed("after_seq must be >= 0", field="after_seq")
        await self.get(conversation_id)
        query = sa.select(msg_t).where(msg_t.c.conversation_id == conversation_id, msg_t.c.seq > after_seq)
        if agent_id is not None:
            query = query.where(msg_t.c.agent_id == agent_id)
        if channel is not None:
            query = query.where(msg_t.c.channel == channel)
        if message_type is not None:
            query = query.where(msg_t.c.message_type == message_type)
        async with self._db.read() as conn:
            rows = await conn.execute(query.order_by(msg_t.c.seq).limit(limit))
            return [_row_message(r) for r in rows]

    # Checkpoints -----------------------------------------------------------------------------

    async def create_checkpoint(self, conversation_id: str, name: str) -> Checkpoint:
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise ValidationFailed("checkpoint name must be 1-200 characters", field="name")
        conv = await self.get(conversation_id)
        cp = Checkpoint(
            id=new_id("cp"),
            conversation_id=conversation_id,
            agent_id=conv.agent_id,
            name=name,
            seq=conv.last_seq,
            created_at=time.time(),
            tenant_id=self._tenant,
        )
        async with self._db.transaction() as conn:
            await conn.execute(
                sa.insert(cp_t).values(
                    id=cp.id,
                    tenant_id=cp.tenant_id,
                    conversation_id=cp.conversation_id,
                    agent_id=cp.agent_id,
                    name=cp.name,
                    seq=cp.seq,
                    created_at=cp.created_at,
                )
            )
        return cp

    async def list_checkpoints(self, conversation_id: str) -> list[Checkpoint]:
        await self.get(conversation_id)
        async with self._db.read() as conn:
            rows = await conn.execute(
                sa.select(cp_t).where(cp_t.c.conversation_id == conversation_id).order_by(cp_t.c.created_at, cp_t.c.id)
            )
            return [_row_checkpoint(r) for r in rows]

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        async with self._db.read() as conn:
            row = (
                await conn.execute(sa.select(cp_t).where(cp_t.c.id == checkpoint_id, cp_t.c.tenant_id == self._tenant))
            ).first()
        if row is None:
            raise CheckpointNotFound(f"no checkpoint {str(checkpoint_id)[:80]!r}", field="checkpoint_id")
        return _row_checkpoint(row)

    async def rollback(self, checkpoint_id: str) -> tuple[Conversation, Conversation | None]:
        """Return the conversation to the checkpoint; later messages move to an archive branch.

        Returns the conversation and the archive (None when nothing came after the checkpoint).
        The caller holds the conversation's writer slot.
        """
        cp = await self.get_checkpoint(checkpoint_id)
        conv = await self.get(cp.conversation_id)
        history = await self.messages(conv.id)
        later = [m for m in history if m.seq > cp.seq]
        if not later:
            return conv, None
        kept = [m for m in history if m.seq <= cp.seq]
        now = time.time()
        async with self._db.transaction() as conn:
            archive = await self.create(
                conv.agent_id,
                title=f"{conv.title or conv.id} (rolled back from {cp.name})",
                kind="archive",
                parent_id=conv.id,
                checkpoint_id=cp.id,
                conn=conn,
            )
            copies = [self._copy(m, archive.id) for m in kept]
            if copies:
                await conn.execute(sa.insert(msg_t), [_message_row(m) for m in copies])
            await conn.execute(
                sa.update(msg_t)
                .where(msg_t.c.conversation_id == conv.id, msg_t.c.seq > cp.seq)
                .values(conversation_id=archive.id)
            )
            await conn.execute(
                sa.update(conv_t).where(conv_t.c.id == archive.id).values(last_seq=later[-1].seq, updated_at=now)
            )
            await conn.execute(sa.update(conv_t).where(conv_t.c.id == conv.id).values(last_seq=cp.seq, updated_at=now))
        for m in later:
            m.conversation_id = archive.id
        archive.last_seq = later[-1].seq
        conv.last_seq = cp.seq
        conv.updated_at = now
        self._remember(archive.id, copies + later)
        self._remember(conv.id, kept)
        return conv, archive

    async def branch(self, checkpoint_id: str, *, title: str = "") -> Conversation:
        """A new conversation holding copies of the messages up to the checkpoint."""
        cp = await self.get_checkpoint(checkpoint_id)
        source = await self.get(cp.conversation_id)
        kept = [m for m in await self.messages(source.id) if m.seq <= cp.seq]
        async with self._db.transaction() as conn:
            conv = await self.create(
                source.agent_id,
                title=title or f"branch of {source.title or source.id} at {cp.name}",
                kind="branch",
                parent_id=source.id,
                checkpoint_id=cp.id,
                conn=conn,
            )
            copies = [self._copy(m, conv.id) for m in kept]
            if copies:
                await conn.execute(sa.insert(msg_t), [_message_row(m) for m in copies])
                await conn.execute(sa.update(conv_t).where(conv_t.c.id == conv.id).values(last_seq=cp.seq))
        conv.last_seq = cp.seq
        self._remember(conv.id, copies)
        return conv

    def _copy(self, m: Message, conversation_id: str) -> Message:
        return Message(
            conversation_id=conversation_id,
            seq=m.seq,
            agent_id=m.agent_id,
            sender=m.sender,
            recipient_id=m.recipient_id,
            role=m.role,
            message_type=m.message_type,
            channel=m.channel,
            content=m.content,
            tool_calls=m.tool_calls,
            tool_call_id=m.tool_call_id,
            name=m.name,
            usage=m.usage,
            turn_id=m.turn_id,
            metadata={**(m.metadata or {}), "copied_from": m.id},
            created_at=m.created_at,
            tenant_id=self._tenant,
        )
