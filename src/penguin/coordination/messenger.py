"""``Messenger``: sends one message to one address and, when asked, waits for the answer.

It is the single path by which Penguin hands a message to an agent: ``send_message``, the
coordinator's targets, and the ``send_message`` tool all use it, so every delivery gets an
envelope on the bus and a receipt. Addresses: an agent id; ``role:<name>`` (resolved to one
agent by the coordinator's round-robin); ``human`` (published for human readers: the receipt
is ``published`` and nothing pretends it was processed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from penguin.bus.delivery import Delivery, Outcome
from penguin.bus.envelope import Envelope, IdFactory, check_address, check_channel, check_message_type
from penguin.bus.inbox import Inbox
from penguin.bus.memory import MemoryBus
from penguin.bus.receipts import Receipt, ReceiptStatus
from penguin.coordination.targets import Answer, AnswerStatus, Request
from penguin.errors import AgentNotFound, ValidationFailed
from penguin.naming import is_valid_agent_id

MAX_CONTENT_CHARS = 1_000_000
HUMAN = "human"


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent:
    """A message that was accepted: its envelope, its receipt at acceptance, its delivery."""

    envelope: Envelope
    receipt: Receipt
    #: None for messages no agent processes (to ``human``).
    delivery: Delivery | None


class Messenger:
    def __init__(
        self,
        bus: MemoryBus,
        inbox: Inbox,
        *,
        tenant_id: str,
        agent_exists: Callable[[str], bool],
        resolve_role: Callable[[str], str],
    ) -> None:
        self._bus = bus
        self._inbox = inbox
        self._tenant = tenant_id
        self._agent_exists = agent_exists
        self._resolve_role = resolve_role
        self._ids = IdFactory("msg")

    def new_id(self) -> str:
        return self._ids()

    async def send(
        self,
        sender: str,
        recipient: str,
        content: str,
        *,
        channel: str | None = None,
        message_type: str = "message",
        metadata: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Sent:
        """Publish a message and queue it in the recipient's inbox; returns once it is durable.

        Raises:
            ValidationFailed: bad sender, recipient, channel, type, content or metadata.
            AgentNotFound: no such agent, or nobody fills the role.
            PersistFailed: storage refused the message (it was not accepted).
        """
        check_address(sender, "sender")
        check_address(recipient, "recipient")
        check_channel(channel)
        check_message_type(message_type)
        if not isinstance(content, str) or not content.strip():
            raise ValidationFailed("content must be a non-empty string", field="content")
        if len(content) > MAX_CONTENT_CHARS:
            raise ValidationFailed(f"content is longer than {MAX_CONTENT_CHARS} characters", field="content")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValidationFailed("metadata must be an object", field="metadata")
        agent_id = self.resolve(recipient)
        env = await self._bus.publish(Envelope(
            id=self._ids(), sender=sender, recipient=recipient, channel=channel, message_type=message_type,
            content=content, metadata=dict(metadata or {}), tenant_id=self._tenant,
            correlation_id=correlation_id, causation_id=causation_id,
        ))
        if agent_id is None:
            return Sent(envelope=env, receipt=await self._inbox.record_published(env, addressed_to=recipient),
                        delivery=None)
        (delivery,) = await self._inbox.submit(env, [agent_id], addressed_to=recipient)
        return Sent(envelope=env, receipt=self._inbox.current(delivery.key), delivery=delivery)

    def resolve(self, recipient: str) -> str | None:
        """The agent that will process a message to ``recipient`` (None for ``human``).

        Raises:
            AgentNotFound: unknown agent or empty role.
            ValidationFailed: an address no agent can receive on (``tool:x``).
        """
        if recipient == HUMAN:
            return None
        if recipient.startswith("role:"):
            return self._resolve_role(recipient[5:])
        if not is_valid_agent_id(recipient):
            raise ValidationFailed(
                f"cannot deliver to {recipient!r}: address an agent id, 'role:<name>' or 'human' "
                "(post to a room with post_to_room)",
                field="recipient",
            )
        if not self._agent_exists(recipient):
            raise AgentNotFound(f"no agent {recipient!r}; create it before messaging it", field="recipient")
        return recipient

    async def ask(self, agent_id: str, request: Request) -> Answer:
        """Send ``request`` to one agent and wait for its answer (see ``Request.on_timeout``)."""
        metadata = dict(request.metadata)
        if request.context is not None:
            metadata["context"] = dict(request.context)
        sent = await self.send(
            request.sender, agent_id, request.text, channel=request.channel, message_type=request.message_type,
            metadata=metadata, correlation_id=request.correlation_id,
        )
        delivery = sent.delivery
        if delivery is None:  # an agent id never resolves to "no agent"
            raise AgentNotFound(f"no agent {agent_id!r}", field="agent_id")
        outcome = await self._inbox.wait(delivery, request.timeout)
        if outcome.timed_out and request.on_timeout == "cancel":
            reason = f"no answer within {request.timeout}s; stopped"
            outcome = await self._inbox.abandon(delivery, reason)
            answer = answer_from(agent_id, sent.envelope.id, outcome)
            if outcome.receipt.status is ReceiptStatus.FAILED and outcome.receipt.reason == reason:
                answer.status = "timeout"
            return answer
        return answer_from(agent_id, sent.envelope.id, outcome)


def answer_from(agent_id: str, message_id: str, outcome: Outcome) -> Answer:
    """The coordinator's view of an inbox outcome."""
    status = outcome.receipt.status
    state: AnswerStatus
    if status is ReceiptStatus.PROCESSED:
        state = "processed"
    elif status is ReceiptStatus.FAILED:
        state = "failed"
    else:
        state = "pending"
    answer = Answer(
        target=agent_id, status=state, agent_id=agent_id, text=outcome.text, receipt=outcome.receipt,
        message_id=message_id, reply_id=outcome.receipt.reply_id, error=outcome.error,
    )
    if outcome.result is not None:
        answer.usage = outcome.result.usage
    return answer
