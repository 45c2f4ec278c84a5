"""The ``MessageBus`` protocol: the small seam every bus backend implements.

Penguin ships the in-process backend (``penguin.bus.memory.MemoryBus``): one global sequence,
a bounded in-memory ring for fast replay, and every envelope persisted to the ``envelopes``
table (write-behind, group commit) so replay and history survive a restart.

How a Redis Streams backend fits (kept possible on purpose, not shipped yet):

* ``publish`` → ``INCR penguin:<tenant>:seq`` for ``seq`` then ``XADD penguin:<tenant>:bus`` with
  the envelope's fields (or one Lua script doing both so seq order equals stream order);
  ``durable=True`` waits for the ``XADD`` reply (and ``WAIT 1`` on a replicated deployment).
* ``subscribe`` → a ``Subscription`` fed by a reader task doing ``XREAD BLOCK`` from the stream
  id matching ``since_seq``; filtering stays client-side with ``EnvelopeFilter.matches`` (or one
  stream per channel for very busy deployments). The bounded queue and overflow policy are the
  same class, so semantics do not change with the backend.
* ``replay`` / ``get`` → ``XRANGE`` over the retained stream, falling back to the SQL
  ``envelopes`` table (an archiver consumer group copies the stream there) for older history.
* The durable per-agent inbox stays in SQL (receipts are the source of truth), so it needs no
  change; with several Penguin processes, a consumer group per agent (``XREADGROUP`` +
  ``XACK`` on ``processed``) gives each agent one consumer cluster-wide.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from penguin.bus.envelope import Envelope
from penguin.bus.filters import EnvelopeFilter
from penguin.bus.subscription import OverflowPolicy, Subscription


@runtime_checkable
class MessageBus(Protocol):
    """Publish envelopes, subscribe with filters, replay from a sequence number."""

    @property
    def last_seq(self) -> int:
        """The seq of the newest published envelope (0 when none)."""
        ...

    async def start(self) -> None:
        """Open the backend (restore the sequence, start the persistence flusher)."""
        ...

    async def publish(self, envelope: Envelope, *, durable: bool = False) -> Envelope:
        """Assign the next seq, deliver to matching subscribers, persist; return the stamped copy.

        With ``durable=True`` it returns only once the envelope is committed to storage.

        Raises:
            BusClosed: the bus is stopped.
            PersistFailed: ``durable`` was asked and storage refused the write.
        """
        ...

    def subscribe(
        self,
        filter: EnvelopeFilter | None = None,
        *,
        since_seq: int | None = None,
        max_queue: int | None = None,
        policy: OverflowPolicy = "drop_oldest",
    ) -> Subscription:
        """Register a subscriber now; it first replays stored envelopes after ``since_seq``."""
        ...

    async def replay(
        self, filter: EnvelopeFilter | None = None, *, since_seq: int = 0, limit: int = 100
    ) -> list[Envelope]:
        """Stored envelopes with ``seq > since_seq`` matching ``filter``, oldest first."""
        ...

    async def get(self, envelope_id: str) -> Envelope:
        """One envelope by id.

        Raises:
            MessageNotFound: no such envelope.
        """
        ...

    async def flush(self) -> None:
        """Wait until every envelope published so far is persisted."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters: published, delivered, dropped, disconnected, subscribers, persisted, ..."""
        ...

    async def aclose(self) -> None:
        """Close every subscription and persist everything accepted."""
        ...
