"""Penguin: a multi-agent orchestration runtime."""

from penguin._version import __version__
from penguin.agent import PenguinAgent
from penguin.agents.spec import AgentSpec, ToolPolicy
from penguin.config import Settings
from penguin.conversations.messages import Checkpoint, Conversation, Message
from penguin.core import PenguinCore
from penguin.engine.results import ChatResult, TurnEvent
from penguin.engine.tasks import Task, TaskStatus
from penguin.errors import (
    AgentExists,
    AgentNotFound,
    AgentPaused,
    CheckpointNotFound,
    Conflict,
    ConversationNotFound,
    DataDirInUse,
    InvalidAgentId,
    InvalidModelString,
    ModelCacheUnwritable,
    ModelError,
    ModelNotInstalled,
    NotFound,
    PayloadTooLarge,
    PenguinError,
    QuotaExceeded,
    RuntimeFailure,
    TaskNotFound,
    ToolDenied,
    ToolError,
    TurnCancelled,
    UnknownSetting,
    UserError,
    ValidationFailed,
)
from penguin.models.base import Model, ModelRequest, ModelResponse, ToolCall, Usage
from penguin.models.scripted import ScriptedModel, script_reply
from penguin.tools.base import Tool, ToolContext

__all__ = [
    "AgentExists",
    "AgentNotFound",
    "AgentPaused",
    "AgentSpec",
    "ChatResult",
    "Checkpoint",
    "CheckpointNotFound",
    "Conflict",
    "Conversation",
    "ConversationNotFound",
    "DataDirInUse",
    "InvalidAgentId",
    "InvalidModelString",
    "Message",
    "Model",
    "ModelCacheUnwritable",
    "ModelError",
    "ModelNotInstalled",
    "ModelRequest",
    "ModelResponse",
    "NotFound",
    "PayloadTooLarge",
    "PenguinAgent",
    "PenguinCore",
    "PenguinError",
    "QuotaExceeded",
    "RuntimeFailure",
    "ScriptedModel",
    "Settings",
    "Task",
    "TaskNotFound",
    "TaskStatus",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolDenied",
    "ToolError",
    "ToolPolicy",
    "TurnCancelled",
    "TurnEvent",
    "UnknownSetting",
    "Usage",
    "UserError",
    "ValidationFailed",
    "__version__",
    "script_reply",
]
