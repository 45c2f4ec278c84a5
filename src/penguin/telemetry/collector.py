"""``TelemetryCollector``: a MessageBus subscriber that turns events into runtime statistics.

Every state change in Penguin is an envelope on the bus (see ``coordination.surface``), so the
collector needs no hooks of its own: it subscribes once, live (counters start when the core
starts, like Prometheus counters), and folds each envelope into counters keyed by message type,
channel and ``agent_id``:

* every envelope: totals by ``message_type`` and channel, and for each agent it involves (sender,
  recipient, or its ``agent:<id>`` channel) the same breakdown plus sent/received;
* ``turn.completed``: turns, input/output tokens and latency (whole turn and model time);
* ``turn.failed``, ``receipt.failed``, ``task.failed``: errors by kind;
* ``task.<status>``: current task counts by status; ``receipt.<status>``: delivery transitions;
* room posts and replies (envelopes without recipient on a room's channel);
* ``agent.created|updated|removed``: lifecycle counts (a removed agent's statistics are dropped).

Tool calls and denials come from the tool policy (``core.tool_stats``), rooms and agents from
their registries, read when a summary is built. The subscription is bounded (``drop_oldest``);
envelopes it had to drop are reported as ``dropped`` rather than silently missing.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from penguin.bus.envelope import Envelope
from penguin.bus.memory import MemoryBus
from penguin.bus.rooms import Room
from penguin.bus.subscription import Subscription
from penguin.telemetry.stats import AgentStats
from penguin.telemetry.summary import TelemetrySummary, agent_entry, count_map

log = logging.getLogger("penguin.telemetry")

#: Queue bound of the collector's bus subscription (envelopes).
MAX_QUEUE = 100_000
#: Distinct keys (channels, message types) kept per counter; the rest are counted as ``_other``.
MAX_KEYS = 1000
OTHER = "_other"
#: Distinct kinds of message tallied before they are folded into the counters anyway.
MAX_TALLIES = 10_000
_NON_AGENTS = frozenset({"human", "system"})
_ERROR_EVENTS = {"turn.failed": "turn", "receipt.failed": "receipt", "task.failed": "task"}

ToolStats = Callable[[str | None], Mapping[str, Any]]
#: What the counters depend on: message type, channel, sender, recipient, and whether a room post
#: is a reply.
_TallyKey = tuple[str, str | None, str, str | None, bool]


class CollectorState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


def _bump(counter: Counter[str], key: str, n: int = 1) -> None:
    """Count ``key``, folding new keys past ``MAX_KEYS`` into ``_other`` to bound memory."""
    if key in counter or len(counter) < MAX_KEYS:
        counter[key] += n
    else:
        counter[OTHER] += n


def _agent_of(address: str | None) -> str | None:
    if address is None or ":" in address or address in _NON_AGENTS:
        return None
    return address


class TelemetryCollector:
    """Aggregates bus envelopes into message, agent, room, task and token statistics.

    Args:
        bus: the bus to subscribe to (started by the core before ``start``).
        tenant_id: only envelopes of this tenant are counted.
        agent_ids: the registered agents (listed with zero counts before their first event).
        rooms: the current rooms.
        tool_stats: ``core.tool_stats``: allowed/denied/error/timeout tool calls per agent.
    """

    def __init__(self, bus: MemoryBus, *, tenant_id: str, agent_ids: Callable[[], Iterable[str]],
                 rooms: Callable[[], list[Room]], tool_stats: ToolStats) -> None:
        self._bus = bus
        self._tenant = tenant_id
        self._agent_ids = agent_ids
        self._rooms = rooms
        self._tool_stats = tool_stats
        self.state = CollectorState.NEW
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._seen = 0
        self.started_at = 0.0
        self._started_mono = 0.0
        #: Envelopes folded into the counters.
        self.observed = 0
        self.by_type: Counter[str] = Counter()
        self.by_channel: Counter[str] = Counter()
        self.agents: dict[str, AgentStats] = {}
        self.agent_events: Counter[str] = Counter()
        self.tasks: Counter[str] = Counter()
        self.receipts: Counter[str] = Counter()
        self.room_posts: Counter[str] = Counter()
        self.room_replies: Counter[str] = Counter()
        #: Status and agent of tasks not yet finished, so a transition moves one count.
        self._open_tasks: dict[str, tuple[str, str]] = {}
        #: Messages seen but not yet folded into the counters: [count, newest created_at] by key.
        self._tallies: dict[_TallyKey, list[Any]] = {}

    # Lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the live bus and start folding envelopes (idempotent while running)."""
        if self.state is CollectorState.RUNNING:
            return
        self._sub = self._bus.subscribe(max_queue=MAX_QUEUE, policy="drop_oldest")
        self._seen = self._bus.last_seq
        self.started_at = time.time()
        self._started_mono = time.monotonic()
        self.state = CollectorState.RUNNING
        self._task = asyncio.create_task(self._consume(self._sub), name="penguin-telemetry")

    async def aclose(self) -> None:
        """Stop: close the subscription, fold what it still holds, and wait for the consumer."""
        if self.state is not CollectorState.RUNNING:
            return
        self.state = CollectorState.STOPPED
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            await asyncio.wait((self._task,))
        self._wake(all_=True)

    @property
    def dropped(self) -> int:
        return self._sub.dropped if self._sub is not None else 0

    async def _consume(self, sub: Subscription) -> None:
        try:
            async for env in sub:
                try:
                    self.observe(env)
                except Exception:  # a malformed event must not stop telemetry; it is logged, not lost silently
                    log.exception("telemetry: cannot count envelope %s (%s)", env.id, env.content[:40])
                self._seen = env.seq
                if self._waiters:
                    self._wake()
        finally:
            self.state = CollectorState.STOPPED
            self._wake(all_=True)

    def _wake(self, *, all_: bool = False) -> None:
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._waiters:
            if all_ or self._seen >= target:
                if not future.done():
                    future.set_result(None)
            else:
                keep.append((target, future))
        self._waiters = keep

    async def flush(self, timeout: float = 1.0) -> None:
        """Wait until every envelope published before this call is counted (at most ``timeout`` s).

        Lets a caller that just finished a turn read a summary that includes it.
        """
        target = self._bus.last_seq
        if self.state is not CollectorState.RUNNING or self._seen >= target:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            log.warning("telemetry: flush timed out at seq %s of %s", self._seen, target)

    # Folding ---------------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> AgentStats:
        stats = self.agents.get(agent_id)
        if stats is None:
            stats = self.agents[agent_id] = AgentStats()
        return stats

    def observe(self, env: Envelope) -> None:
        """Fold one envelope into the counters.

        Plain messages are only tallied here, one dict update per envelope, under the fields the
        counters depend on; the tallies are folded into the counters before anything reads them
        (``summary``) and before any event (an agent's removal drops its stats, so the order of
        the two matters). This keeps the collector's cost per envelope a fraction of the bus's.
        """
        if env.tenant_id != self._tenant:
            return
        self.observed += 1
        kind, channel = env.message_type, env.channel
        if kind == "event" or kind == "status":
            self._fold()
            reply = env.recipient is None and "in_reply_to" in env.metadata
            self._count((kind, channel, env.sender, env.recipient, reply), 1, env.created_at)
            if channel is not None and channel.startswith("agent:"):
                self._event(channel[6:], env)
            return
        recipient = env.recipient
        key = (kind, channel, env.sender, recipient, recipient is None and "in_reply_to" in env.metadata)
        tally = self._tallies.get(key)
        if tally is None:
            if len(self._tallies) >= MAX_TALLIES:
                self._fold()
            self._tallies[key] = [1, env.created_at]
        else:
            tally[0] += 1
            tally[1] = env.created_at

    def _fold(self) -> None:
        tallies, self._tallies = self._tallies, {}
        for key, (count, last) in tallies.items():
            self._count(key, count, last)

    def _count(self, key: _TallyKey, n: int, last: float) -> None:
        """Count ``n`` envelopes that share ``key``; the newest was created at ``last``."""
        kind, channel, sender_address, recipient_address, reply = key
        shown = channel or "-"
        _bump(self.by_type, kind, n)
        _bump(self.by_channel, shown, n)
        sender = _agent_of(sender_address)
        recipient = _agent_of(recipient_address)
        owner = channel[6:] if channel is not None and channel.startswith("agent:") else None
        for agent_id in {a for a in (sender, recipient, owner) if a is not None}:
            stats = self._agent(agent_id)
            _bump(stats.by_type, kind, n)
            _bump(stats.by_channel, shown, n)
            stats.last_seen = max(stats.last_seen, last)
            stats.sent += n * (agent_id == sender)
            stats.received += n * (agent_id == recipient)
        if owner is None and channel is not None and recipient_address is None and kind != "event":
            _bump(self.room_replies if reply else self.room_posts, channel, n)

    def _event(self, agent_id: str, env: Envelope) -> None:
        name, data = env.content, env.metadata
        kind, _, status = name.partition(".")
        if name == "turn.completed":
            self._turn(self._agent(agent_id), data)
        elif kind == "agent" and status:
            self.agent_events[status] += 1
            if status == "removed":
                self.agents.pop(agent_id, None)
                return
        elif kind == "task" and status:
            self._task_status(agent_id, env.correlation_id or str(data.get("id", "")), status, data)
        elif kind == "receipt" and status:
            _bump(self.receipts, status)
            _bump(self._agent(agent_id).receipts, status)
        error = _ERROR_EVENTS.get(name)
        if error is not None:
            self._agent(agent_id).errors[error] += 1

    def _turn(self, stats: AgentStats, data: Mapping[str, Any]) -> None:
        usage = data.get("usage") or {}
        timings = data.get("timings") or {}
        stats.turns += 1
        stats.input_tokens += int(usage.get("input_tokens", 0))
        stats.output_tokens += int(usage.get("output_tokens", 0))
        stats.turn_tool_calls += int(data.get("tool_calls", 0))
        if "total" in timings:
            stats.latency.add(float(timings["total"]))
        if "model" in timings:
            stats.model_latency.add(float(timings["model"]))
        stats.last_model = str(data.get("model") or stats.last_model)

    def _task_status(self, agent_id: str, task_id: str, status: str, data: Mapping[str, Any]) -> None:
        previous = self._open_tasks.pop(task_id, None)
        if previous is not None:
            old_agent, old_status = previous
            self.tasks[old_status] -= 1
            if old_agent in self.agents:
                self.agents[old_agent].tasks[old_status] -= 1
        self.tasks[status] += 1
        self._agent(agent_id).tasks[status] += 1
        if status in ("queued", "running"):
            self._open_tasks[task_id] = (agent_id, status)

    # Reading ---------------------------------------------------------------------------------

    def summary(self, agent_id: str | None = None) -> TelemetrySummary:
        """The statistics as plain data; with ``agent_id``, only what involves that agent.

        The caller validates ``agent_id`` (``PenguinCore.telemetry_summary`` raises for unknown ids).
        """
        self._fold()
        tools = self._tool_stats(agent_id)
        tool_agents: Mapping[str, Any] = tools.get("agents", {})
        ids = [agent_id] if agent_id is not None else sorted({*self._agent_ids(), *self.agents})
        agents = {a: agent_entry(self.agents.get(a) or AgentStats(), tool_agents.get(a)) for a in ids}
        rooms = self._rooms() if agent_id is None else [r for r in self._rooms() if agent_id in r.members]
        if agent_id is None:
            by_type, by_channel = self.by_type, self.by_channel
            tasks, receipts = self.tasks, self.receipts
        else:
            one = self.agents.get(agent_id) or AgentStats()
            by_type, by_channel, tasks, receipts = one.by_type, one.by_channel, one.tasks, one.receipts
        entries = agents.values()
        return TelemetrySummary(
            agent_id=agent_id,
            started_at=self.started_at,
            uptime_seconds=round(time.monotonic() - self._started_mono, 3) if self.started_at else 0.0,
            observed=self.observed,
            dropped=self.dropped,
            messages={
                "total": sum(by_type.values()),
                "by_type": count_map(by_type),
                "by_channel": count_map(by_channel),
                "by_agent": {a: sum(e["messages"]["by_type"].values()) for a, e in agents.items()},
            },
            agents=agents,
            agent_events=count_map(self.agent_events),
            turns=sum(e["turns"] for e in entries),
            tokens={
                "input_tokens": sum(e["tokens"]["input_tokens"] for e in entries),
                "output_tokens": sum(e["tokens"]["output_tokens"] for e in entries),
                "total_tokens": sum(e["tokens"]["total_tokens"] for e in entries),
            },
            errors=count_map(sum((Counter(e["errors"]) for e in entries), Counter())),
            tasks={"by_status": count_map(tasks), "total": sum(n for n in tasks.values() if n > 0)},
            receipts=count_map(receipts),
            rooms={
                "count": len(rooms),
                "rooms": {r.name: {"members": len(r.members), "posts": self.room_posts.get(r.name, 0),
                                   "replies": self.room_replies.get(r.name, 0)} for r in rooms},
            },
            tools=dict(tools.get("totals", {})),
        )
