"""Penguin's typed errors.

Caller mistakes and runtime failures are kept apart so that every edge (REST, WebSocket, client,
CLI) can translate them once, from a single table::

    PenguinError
    ├── UserError                 the caller asked for something invalid (4xx)
    │   ├── InvalidAgentId        422, breaks the id rule
    │   ├── InvalidModelString    422, not "provider:model" or an unknown provider
    │   ├── UnknownSetting        422, a keyword, PENGUIN_* variable or penguin.toml key that is not a setting
    │   ├── ValidationFailed      422, a field has a bad value
    │   ├── AgentNotFound         404
    │   ├── AgentExists           409
    │   ├── ConversationNotFound  404
    │   ├── CheckpointNotFound    404
    │   ├── TaskNotFound          404
    │   ├── NotFound              404, anything else addressed by id
    │   ├── Conflict              409, a state transition that is not allowed now
    │   │   └── DataDirInUse      another process owns the data directory (names it)
    │   ├── PayloadTooLarge       413
    │   └── SchemaMismatch        409, the database's schema is not the one this Penguin runs on
    │       ├── SchemaTooNew          made by a newer Penguin: refused, nothing touched
    │       ├── MigrationRequired     older, and automatic upgrades are off
    │       └── SchemaUnrecognized    has Penguin's tables but no schema version
    └── RuntimeFailure            Penguin or a dependency failed while doing valid work
        ├── ModelError            the model provider failed (status, provider, message)
        ├── ModelNotInstalled     the provider's optional dependency is missing (says how to fix)
        │   └── ModelCacheUnwritable  the model cache cannot be written (names it and PENGUIN_MODELS_DIR)
        ├── ExtraNotInstalled     a setting needs an optional extra that is missing (e.g. [otel])
        ├── TurnCancelled         an in-flight turn was cancelled
        ├── ToolError             a tool failed (returned to the model, not raised to callers)
        │   └── ToolDenied        policy refused the call
        ├── QuotaExceeded         a budget or rate limit is exhausted (429)
        ├── AgentPaused           raised only where waiting is not possible
        ├── MigrationFailed       a schema upgrade failed and was rolled back
        └── SandboxUnavailable    503, the shell cannot be confined on this machine (says why and the fix)
"""

from __future__ import annotations

from typing import Any


class PenguinError(Exception):
    """Base class of every error Penguin raises on purpose."""

    #: HTTP status used by the API edge.
    status: int = 500
    #: Short, stable slug used as the problem+json ``type``.
    code: str = "penguin-error"
    #: Human title for problem+json.
    title: str = "Penguin error"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        """Return an RFC 9457 problem body for this error."""
        body: dict[str, Any] = {
            "type": f"https://penguin.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return body


class UserError(PenguinError):
    """The caller asked for something invalid; fixing the request fixes it."""

    status = 400
    code = "bad-request"
    title = "Bad request"


class ValidationFailed(UserError):
    status = 422
    code = "validation-failed"
    title = "Validation failed"


class InvalidAgentId(ValidationFailed):
    code = "invalid-agent-id"
    title = "Invalid agent id"


class InvalidModelString(ValidationFailed):
    code = "invalid-model"
    title = "Invalid model string"


class UnknownSetting(ValidationFailed):
    """A settings name (keyword argument, ``PENGUIN_*`` variable, ``penguin.toml`` key) that does not exist."""

    code = "unknown-setting"
    title = "Unknown setting"


class NotFound(UserError):
    status = 404
    code = "not-found"
    title = "Not found"


class AgentNotFound(NotFound):
    code = "agent-not-found"
    title = "Agent not found"


class ConversationNotFound(NotFound):
    code = "conversation-not-found"
    title = "Conversation not found"


class CheckpointNotFound(NotFound):
    code = "checkpoint-not-found"
    title = "Checkpoint not found"


class TaskNotFound(NotFound):
    code = "task-not-found"
    title = "Task not found"


class Conflict(UserError):
    status = 409
    code = "conflict"
    title = "Conflict"


class AgentExists(Conflict):
    code = "agent-exists"
    title = "Agent already exists"


class DataDirInUse(Conflict):
    """Another process owns the data directory; ``owner_pid`` and ``owner_url`` name it."""

    code = "data-dir-in-use"
    title = "Data directory in use"


class PayloadTooLarge(UserError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class SchemaMismatch(UserError):
    """The database's schema is not the one this code runs on; the detail names both and the fix.

    A caller error rather than a runtime failure: nothing broke, the operator pointed this Penguin
    at a database it must not open as it is (the CLI exits 2 on it).
    """

    status = 409
    code = "schema-mismatch"
    title = "Database schema mismatch"


class SchemaTooNew(SchemaMismatch):
    code = "schema-too-new"
    title = "Database schema is newer than this Penguin"


class MigrationRequired(SchemaMismatch):
    code = "migration-required"
    title = "Database schema needs an upgrade"


class SchemaUnrecognized(SchemaMismatch):
    code = "schema-unrecognized"
    title = "Database schema not recognized"


class RuntimeFailure(PenguinError):
    """Penguin or one of its dependencies failed while doing valid work."""

    status = 500
    code = "runtime-failure"
    title = "Runtime failure"


class ModelError(RuntimeFailure):
    """A model provider failed; carries the provider, the HTTP status (if any) and its message."""

    status = 502
    code = "model-error"
    title = "Model provider error"

    def __init__(self, detail: str, *, provider: str, status_code: int | None = None, retryable: bool = False) -> None:
        super().__init__(
            f"{provider}: {detail}" if status_code is None else f"{provider} (HTTP {status_code}): {detail}",
            provider=provider,
            provider_status=status_code,
        )
        self.provider = provider
        self.status_code = status_code
        self.retryable = retryable


class ModelNotInstalled(RuntimeFailure):
    status = 503
    code = "model-not-installed"
    title = "Model runtime not installed"


class ModelCacheUnwritable(ModelNotInstalled):
    """The shared model cache cannot be created or written, so the bundled weights cannot be set up.

    A ``ModelNotInstalled``: the local model is unavailable until it is fixed, and fallbacks that
    skip a model which is not installed skip this one too.
    """

    code = "model-cache-unwritable"
    title = "Model cache not writable"


class ExtraNotInstalled(RuntimeFailure):
    """A setting asks for a feature whose optional dependencies are not installed."""

    status = 503
    code = "extra-not-installed"
    title = "Optional dependency not installed"


class TurnCancelled(RuntimeFailure):
    status = 409
    code = "turn-cancelled"
    title = "Turn cancelled"


class ToolError(RuntimeFailure):
    """A tool call failed. The engine hands this back to the model as the tool result."""

    status = 500
    code = "tool-error"
    title = "Tool error"


class ToolDenied(ToolError):
    status = 403
    code = "tool-denied"
    title = "Tool call denied"


class QuotaExceeded(RuntimeFailure):
    status = 429
    code = "quota-exceeded"
    title = "Quota exceeded"


class AgentPaused(RuntimeFailure):
    status = 409
    code = "agent-paused"
    title = "Agent paused"


class MigrationFailed(RuntimeFailure):
    """A schema upgrade failed; its transaction was rolled back, so the database is as it was."""

    status = 500
    code = "migration-failed"
    title = "Database upgrade failed"


class SandboxUnavailable(RuntimeFailure):
    """``run_shell`` cannot be enabled: no shell sandbox can be built here and ``shell_sandbox`` is ``required``.

    A runtime failure, not a caller mistake: the request is fine, the machine lacks bubblewrap,
    namespaces or a process limit. The detail names the missing piece and the setting that
    runs commands unconfined instead.
    """

    status = 503
    code = "sandbox-unavailable"
    title = "Shell sandbox unavailable"


__all__ = [
    "AgentExists",
    "AgentNotFound",
    "AgentPaused",
    "CheckpointNotFound",
    "Conflict",
    "ConversationNotFound",
    "DataDirInUse",
    "ExtraNotInstalled",
    "InvalidAgentId",
    "InvalidModelString",
    "ModelCacheUnwritable",
    "MigrationFailed",
    "MigrationRequired",
    "ModelError",
    "ModelNotInstalled",
    "NotFound",
    "PayloadTooLarge",
    "PenguinError",
    "QuotaExceeded",
    "RuntimeFailure",
    "SandboxUnavailable",
    "SchemaMismatch",
    "SchemaTooNew",
    "SchemaUnrecognized",
    "TaskNotFound",
    "ToolDenied",
    "ToolError",
    "TurnCancelled",
    "UnknownSetting",
    "UserError",
    "ValidationFailed",
]
