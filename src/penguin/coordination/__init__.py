"""Multi-agent coordination: roles, round-robin, role chains, broadcast, fallback, routing, sub-agents."""

from penguin.coordination.coordinator import ChainStep, Lineage, MultiAgentCoordinator, RouteResult
from penguin.coordination.fallback import FallbackModel, FallbackTarget
from penguin.coordination.messenger import Messenger, Sent
from penguin.coordination.routing import Router, RouteRule
from penguin.coordination.subagents import DelegationResult, SubAgents
from penguin.coordination.targets import AgentTarget, Answer, CallableTarget, Request, Target
from penguin.coordination.usage import AgentUsage, UsageLedger

__all__ = [
    "AgentTarget",
    "AgentUsage",
    "Answer",
    "CallableTarget",
    "ChainStep",
    "DelegationResult",
    "FallbackModel",
    "FallbackTarget",
    "Lineage",
    "Messenger",
    "MultiAgentCoordinator",
    "Request",
    "RouteResult",
    "RouteRule",
    "Router",
    "Sent",
    "SubAgents",
    "Target",
    "UsageLedger",
]
