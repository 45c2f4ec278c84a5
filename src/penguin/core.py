"""``PenguinCore``: the composition root and the one async API every surface calls.

It builds every service (database, agent registry, conversation store, models, tools, engine,
tasks) and passes them down; nothing in Penguin is module-level state. REST, WebSocket, the CLI,
``PenguinAgent`` and ``PenguinClient`` (through the API) all call these methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pydantic

from penguin.agents.registry import AgentRegistry
from penguin.agents.runtime import Runtimes
from penguin.agents.spec import AgentSpec, ToolPolicy
from penguin.charter import Charter, CharterFiles, CharterRunResult, CharterWorkflow, Problem, lint
from penguin.charter.tools import TOOLS as CHARTER_TOOLS
from penguin.config import ProviderSettings, Settings, check_setting_names
from penguin.conversations.messages import Checkpoint, Conversation, Message
from penguin.conversations.store import ConversationStore
from penguin.coordination.surface import MessagingSurface
from penguin.engine.results import ChatResult, EventHook, TurnEvent
from penguin.engine.tasks import Task, TaskManager
from penguin.engine.turn import Engine, TurnInput
from penguin.errors import AgentExists, AgentNotFound, Conflict, PenguinError, ValidationFailed
from penguin.memory import Memory, MemoryHit, MemoryStats, MemoryStore, Scope, SearchMode, make_embedder
from penguin.memory.hooks import MemoryHooks
from penguin.memory.summaries import Compactor
from penguin.memory.tools import memory_tools
from penguin.models.progress import LogProgress, ModelProgress
from penguin.models.providers import Provider, Providers
from penguin.models.registry import ModelRegistry
from penguin.naming import DEFAULT_AGENT_ID, validate_agent_id
from penguin.security.sandbox import ShellSandbox
from penguin.storage.database import Database
from penguin.storage.owner import DatabaseLock, DataDirLock
from penguin.telemetry import RuntimeMetrics, TelemetryCollector, TelemetrySummary
from penguin.telemetry.tracing import Tracing
from penguin.tools.approvals import ApprovalBroker, ApprovalRequest
from penguin.tools.mcp import MCPManager, MCPServerInfo
from penguin.tools.policy import ToolPolicyEnforcer
from penguin.tools.registry import ToolRegistry
from penguin.tools.sandbox import Workspace
from penguin.tools.shell import ShellLimits
from penguin.tools.workspace import register_builtin_tools

MAX_TEXT_CHARS = 1_000_000


def _provider_settings(**fields: Any) -> ProviderSettings:
    """``ProviderSettings`` from keyword fields; a bad one is a ``ValidationFailed`` naming it."""
    try:
        return ProviderSettings.model_validate(fields)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "provider"
        raise ValidationFailed(f"{name}: {first['msg']}", field=name) from None


class PenguinCore(MessagingSurface):
    """Owns every service of one Penguin instance. Use ``async with PenguinCore(...)``."""

    def __init__(
        self, settings: Settings | None = None, *, model_progress: ModelProgress | None = None, **overrides: Any
    ) -> None:
        """Build every service; nothing runs until ``start()``.

        Args:
            settings: default: from the environment.
            model_progress: hears how local model weights are prepared when a first call loads them
                (default: ``LogProgress``, INFO lines on the ``penguin.models`` logger).
            **overrides: settings fields, e.g. ``data_dir=...``, ``model="scripted:echo"``.
        """
        if settings is None:
            settings = Settings(**overrides)
        elif overrides:
            check_setting_names(overrides, source="keyword argument")
            settings = settings.model_copy(update=overrides)
        self.settings = settings
        self.tenant_id = settings.tenant_id
        settings.ensure_data_dir()
        #: This process's claim on the data directory (taken by ``start``; see ``storage.owner``).
        self.owner = DataDirLock(settings.data_dir)
        self.db = Database(settings.resolved_database_url(), auto_migrate=settings.auto_migrate)
        self._db_owner = None if self.db.is_sqlite else DatabaseLock(self.db.engine)
        self.metrics = RuntimeMetrics(agent_limit=settings.metrics_agent_limit)
        #: OpenTelemetry spans, on only when the OTEL_* variables ask (see telemetry.tracing).
        self.tracing = Tracing.from_environment()
        self.models = ModelRegistry(
            settings,
            progress=model_progress if model_progress is not None else LogProgress(),
            on_retry=self.metrics.count_retry,
        )
        self.workspace = Workspace.from_settings(settings)
        self.approvals = ApprovalBroker()
        self.tools = ToolRegistry(policy=ToolPolicyEnforcer(approvals=self.approvals))
        #: Where ``run_shell`` commands run; ``stop()`` kills any still running.
        self.sandbox = ShellSandbox.from_settings(settings, workspace=self.workspace.root)
        register_builtin_tools(
            self.tools,
            self.workspace,
            shell=ShellLimits(timeout=settings.shell_timeout, max_output_bytes=settings.shell_max_output_bytes),
            sandbox=self.sandbox,
        )
        self.mcp = MCPManager(
            self.tools, log_dir=settings.data_dir / "logs", connect_timeout=settings.mcp_connect_timeout
        )
        self.agents = AgentRegistry(
            self.db, tenant_id=self.tenant_id, validate_model=self.models.validate, on_change=self._agent_changed
        )
        self.conversations = ConversationStore(self.db, tenant_id=self.tenant_id)
        self.memory = MemoryStore(
            self.db, tenant_id=self.tenant_id, embedder=make_embedder(settings.memory_embedder, settings)
        )
        self.memory_hooks = MemoryHooks(
            store=self.memory,
            compactor=Compactor(
                conversations=self.conversations, models=self.models, memory=self.memory, settings=settings
            ),
            settings=settings,
        )
        self.tools.register_all(memory_tools(self.memory))
        self.charters = CharterFiles(self.workspace)
        self.tools.register_all(CHARTER_TOOLS)
        self.runtimes = Runtimes()
        self.engine = Engine(
            settings=settings,
            models=self.models,
            store=self.conversations,
            tools=self.tools,
            core=self,
            memory=self.memory_hooks,
            metrics=self.metrics,
            tracing=self.tracing,
        )
        self.tasks = TaskManager(
            self.db,
            tenant_id=self.tenant_id,
            run_turn=self._task_turn,
            new_conversation=self._task_conversation,
            on_change=self._task_changed,
        )
        self._init_messaging()
        self.telemetry = TelemetryCollector(
            self.bus, tenant_id=self.tenant_id, agent_ids=lambda: (s.agent_id for s in self.agents.list()),
            rooms=self.rooms.all, tool_stats=self.tool_stats,
        )
        self.metrics.watch(self.telemetry, queue_depths=self.queue_depths)
        #: Named provider endpoints (``<name>:<model>``), from the settings and the API.
        self.providers = Providers(settings, self._bus_kv, self.models, on_retry=self.metrics.count_retry)
        self._started = False

    # Lifecycle -------------------------------------------------------------------------------

    async def start(self) -> PenguinCore:
        """Claim the data directory, open (and migrate) the database, start every service.

        Raises:
            DataDirInUse: another process owns the data directory or the PostgreSQL database.
        """
        if self._started:
            return self
        info = self.owner.acquire(role="python")
        try:
            await self.db.create_schema()
            if self._db_owner is not None:
                await self._db_owner.acquire(info)
        except BaseException:
            await self.db.aclose()
            self.owner.release()
            raise
        await self._start_bus()
        self.telemetry.start()
        await self.memory.start()
        await self.providers.load()
        await self.agents.load()
        await self.tasks.recover()
        await self._start_messaging()
        self._started = True
        return self

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self.inbox.aclose()
        await self.tasks.aclose()
        for runtime in self.runtimes.all():
            runtime.cancel()
        await self.sandbox.aclose()
        await self._stop_messaging()
        await self.telemetry.aclose()
        self.approvals.close()
        await self.mcp.aclose()
        await self.models.aclose()
        await self.memory.aclose()
        self.tracing.shutdown()
        if self._db_owner is not None:
            await self._db_owner.release()
        await self.db.aclose()
        self.owner.release()

    async def advertise(self, url: str) -> None:
        """Record where this core's API listens, so local CLI commands become its clients."""
        self.owner.advertise(url)
        if self._db_owner is not None and self.owner.info is not None:
            await self._db_owner.advertise(self.owner.info)

    async def __aenter__(self) -> PenguinCore:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _agent_changed(self, kind: str, spec: AgentSpec) -> None:
        await self._agent_event(kind, spec)
        if kind == "removed":
            self.runtimes.drop(spec.agent_id)
            self.conversations.forget_agent(spec.agent_id)
            await self.mcp.detach_agent(spec.agent_id)
            self.tools.drop_agent(spec.agent_id)
            return
        runtime = self.runtimes.find(spec.agent_id)
        if runtime is not None:
            if spec.paused:
                runtime.pause()
            else:
                runtime.resume()

    # Agents ----------------------------------------------------------------------------------

    async def create_agent(self, agent_id: str, *, exist_ok: bool = False, **fields: Any) -> AgentSpec:
        """Register a persona. Fields: system_prompt, roles, model, model_parameters, context_tokens,
        tool_policy, parent_id, paused, metadata.

        Args:
            exist_ok: when ``agent_id`` exists, update it with ``fields`` and return it (an upsert)
                instead of raising ``AgentExists``.

        Raises:
            SandboxUnavailable: the policy enables ``run_shell`` and no shell sandbox can be built here.
        """
        await self._check_shell(fields)
        try:
            return await self.agents.create(agent_id, **fields)
        except AgentExists:
            if not exist_ok:
                raise
        return await self.agents.update(agent_id, fields) if fields else self.agents.get(agent_id)

    def get_agent(self, agent_id: str) -> AgentSpec:
        return self.agents.get(validate_agent_id(agent_id))

    def list_agents(self, *, role: str | None = None) -> list[AgentSpec]:
        return self.agents.list(role=role)

    async def update_agent(self, agent_id: str, **changes: Any) -> AgentSpec:
        """Change an agent's fields (as ``create_agent``).

        Raises:
            SandboxUnavailable: the change enables ``run_shell`` and no shell sandbox can be built here.
        """
        await self._check_shell(changes)
        return await self.agents.update(validate_agent_id(agent_id), changes)

    async def _check_shell(self, fields: Mapping[str, Any]) -> None:
        """Refuse to enable ``run_shell`` where it cannot be sandboxed (``shell_sandbox = "required"``)."""
        policy = fields.get("tool_policy")
        wants = policy.shell if isinstance(policy, ToolPolicy) else isinstance(policy, Mapping) and policy.get("shell")
        if wants is True:
            await self.sandbox.require()

    async def remove_agent(self, agent_id: str) -> AgentSpec:
        return await self.agents.remove(validate_agent_id(agent_id))

    async def switch_model(self, agent_id: str, model: str) -> AgentSpec:
        """Change one agent's model; no other agent is affected."""
        return await self.update_agent(agent_id, model=model)

    async def pause_agent(self, agent_id: str) -> AgentSpec:
        return await self.update_agent(agent_id, paused=True)

    async def resume_agent(self, agent_id: str) -> AgentSpec:
        return await self.update_agent(agent_id, paused=False)

    def agent_status(self, agent_id: str) -> dict[str, Any]:
        spec = self.get_agent(agent_id)
        runtime = self.runtimes.find(agent_id)
        status: dict[str, Any] = runtime.status() if runtime else {"paused": spec.paused, "running": [], "queued": 0}
        return status

    async def prepare_model(
        self, model: str | None = None, *, agent_id: str | None = None, progress: ModelProgress | None = None
    ) -> str:
        """Prepare the model a turn would use now, instead of during that turn; return its string.

        The model is ``model`` when given, else the agent's own, else the default. Only local
        models have work to do (assemble the bundled weights once per machine, load them).

        Args:
            model: a ``provider:model`` string, as the ``model`` option of ``chat``.
            agent_id: the agent whose model to prepare (default: the default agent).
            progress: hears about this preparation (e.g. a progress bar); default: the core's
                ``model_progress``.

        Raises:
            InvalidAgentId, InvalidModelString: bad input.
            ModelNotInstalled: the local runtime or weights are missing (or the cache is unwritable).
            ModelError: the weights could not be loaded.
        """
        if model is not None:
            name = self.models.validate(model)
        else:
            spec = self.agents.find(DEFAULT_AGENT_ID if agent_id is None else validate_agent_id(agent_id))
            name = self.engine.model_for(spec) if spec is not None else self.settings.resolved_default_model()
        await self.models.prepare(name, progress=progress)
        return name

    async def _resolve_agent(self, agent_id: str | None, *, create: bool = True) -> tuple[AgentSpec, bool]:
        agent_id = DEFAULT_AGENT_ID if agent_id is None else validate_agent_id(agent_id)
        spec = self.agents.find(agent_id)
        if spec is not None:
            return spec, False
        if not (create and self.settings.auto_create_agents):
            raise AgentNotFound(
                f"no agent {agent_id!r} and auto-create is off; create it first",
                field="agent_id",
            )
        return await self.agents.ensure(agent_id)

    async def _conversation_for(self, spec: AgentSpec, conversation_id: str | None) -> Conversation:
        if conversation_id is None:
            return await self.conversations.default_for(spec.agent_id)
        conv = await self.conversations.get(conversation_id)
        if conv.agent_id != spec.agent_id:
            raise Conflict(
                f"conversation {conversation_id!r} belongs to agent {conv.agent_id!r}, not {spec.agent_id!r}",
                field="conversation_id",
            )
        return conv

    # Chat ------------------------------------------------------------------------------------

    async def chat(
        self,
        text: str,
        *,
        agent_id: str | None = None,
        conversation_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        model: str | None = None,
        max_iterations: int | None = None,
        sender: str = "human",
        channel: str | None = None,
        message_type: str = "message",
        task_id: str | None = None,
        stream: bool = False,
        on_event: EventHook | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ChatResult:
        """Run one turn for an agent and return its reply.

        Raises:
            InvalidAgentId, ValidationFailed, InvalidModelString: bad input.
            AgentNotFound: unknown agent with auto-create off.
            ModelError: the model failed (the message is still recorded).
            TurnCancelled: ``cancel`` stopped the turn.
        """
        if not isinstance(text, str):
            raise ValidationFailed("text must be a string", field="text")
        if not text.strip():
            raise ValidationFailed("text must not be empty", field="text")
        if len(text) > MAX_TEXT_CHARS:
            raise ValidationFailed(f"text is longer than {MAX_TEXT_CHARS} characters", field="text")
        if max_iterations is not None and (
            isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or not 1 <= max_iterations <= 1000
        ):
            raise ValidationFailed("max_iterations must be an integer between 1 and 1000", field="max_iterations")
        if context is not None and not isinstance(context, Mapping):
            raise ValidationFailed("context must be an object", field="context")
        if model is not None:
            model = self.models.validate(model)
        spec, created = await self._resolve_agent(agent_id)
        conv = await self._conversation_for(spec, conversation_id)
        turn = TurnInput(
            text=text,
            sender=sender,
            channel=channel,
            message_type=message_type,
            context=context,
            model=model,
            max_iterations=max_iterations,
            stream=stream,
            task_id=task_id,
            metadata=dict(metadata or {}),
        )
        runtime = self.runtimes.get(spec.agent_id, paused=spec.paused)

        async def work() -> ChatResult:
            # Re-read the spec once the writer slot is ours: a model switch or persona edit made while
            # this message waited applies to it.
            current = self.agents.get(spec.agent_id)
            return await self.engine.run_turn(current, conv, turn, on_event=on_event)

        try:
            result, queued_ms = await runtime.run(conv.id, work)
        except PenguinError as exc:
            await self._turn_failed(spec.agent_id, exc, sender=sender, channel=channel, task_id=task_id)
            raise
        result.created = created
        result.timings["queued"] = queued_ms
        await self._turn_completed(result, sender=sender, channel=channel, task_id=task_id, metadata=metadata)
        return result

    async def stream_chat(self, text: str, **options: Any) -> AsyncIterator[TurnEvent]:
        """Run one turn and yield its events (start, delta, tool_call, tool_result, final | error)."""
        queue: asyncio.Queue[TurnEvent | None] = asyncio.Queue()

        async def hook(event: TurnEvent) -> None:
            queue.put_nowait(event)

        async def run() -> None:
            try:
                await self.chat(text, stream=True, on_event=hook, **options)
            except PenguinError as exc:
                agent = options.get("agent_id") or DEFAULT_AGENT_ID
                queue.put_nowait(
                    TurnEvent(
                        type="error",
                        agent_id=str(agent),
                        conversation_id=str(options.get("conversation_id") or ""),
                        data={"status": exc.status, "detail": exc.detail, "problem": exc.to_problem()},
                    )
                )
            finally:
                queue.put_nowait(None)

        runner = asyncio.create_task(run())
        try:
            while (event := await queue.get()) is not None:
                yield event
            await runner
        finally:
            if not runner.done():
                runner.cancel()
                await asyncio.wait((runner,))

    def cancel(self, agent_id: str, conversation_id: str | None = None) -> list[str]:
        """Cancel the agent's in-flight turn(s); returns the conversations whose turn was stopped."""
        self.get_agent(agent_id)
        runtime = self.runtimes.find(agent_id)
        return runtime.cancel(conversation_id) if runtime else []

    # Conversations ---------------------------------------------------------------------------

    async def history(self, agent_id: str | None = None, conversation_id: str | None = None) -> list[Message]:
        """The full message log of a conversation (the agent's main one by default)."""
        if conversation_id is not None:
            return list(await self.conversations.messages((await self.conversations.get(conversation_id)).id))
        spec = self.get_agent(agent_id or DEFAULT_AGENT_ID)
        conv = await self.conversations.default_for(spec.agent_id)
        return list(await self.conversations.messages(conv.id))

    async def history_page(self, conversation_id: str, **filters: Any) -> list[Message]:
        return await self.conversations.page(conversation_id, **filters)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        return await self.conversations.get(conversation_id)

    async def list_conversations(self, agent_id: str) -> list[Conversation]:
        self.get_agent(agent_id)
        return await self.conversations.list_for_agent(agent_id)

    async def new_conversation(self, agent_id: str, *, title: str = "") -> Conversation:
        spec = self.get_agent(agent_id)
        return await self.conversations.create(spec.agent_id, title=title, kind="branch")

    async def _main_conversation(self, agent_id: str | None, conversation_id: str | None) -> Conversation:
        if conversation_id is not None:
            return await self.conversations.get(conversation_id)
        spec = self.get_agent(agent_id or DEFAULT_AGENT_ID)
        return await self.conversations.default_for(spec.agent_id)

    async def checkpoint(
        self, name: str, *, agent_id: str | None = None, conversation_id: str | None = None
    ) -> Checkpoint:
        conv = await self._main_conversation(agent_id, conversation_id)
        runtime = self.runtimes.get(conv.agent_id)
        cp, _ = await runtime.run(conv.id, lambda: self.conversations.create_checkpoint(conv.id, name))
        return cp

    async def list_checkpoints(
        self, *, agent_id: str | None = None, conversation_id: str | None = None
    ) -> list[Checkpoint]:
        conv = await self._main_conversation(agent_id, conversation_id)
        return await self.conversations.list_checkpoints(conv.id)

    async def rollback(self, checkpoint_id: str) -> tuple[Conversation, Conversation | None]:
        """Return a conversation to a checkpoint; later messages are kept in an archive branch."""
        cp = await self.conversations.get_checkpoint(checkpoint_id)
        runtime = self.runtimes.get(cp.agent_id)
        out, _ = await runtime.run(cp.conversation_id, lambda: self.conversations.rollback(checkpoint_id))
        return out

    async def branch(self, checkpoint_id: str, *, title: str = "") -> Conversation:
        return await self.conversations.branch(checkpoint_id, title=title)

    # Tools -----------------------------------------------------------------------------------

    def pending_approvals(self, agent_id: str | None = None) -> list[ApprovalRequest]:
        """Tool calls waiting for approve/deny, oldest first (optionally one agent's)."""
        if agent_id is not None:
            validate_agent_id(agent_id)
        return self.approvals.pending(agent_id)

    def approve_tool_call(self, approval_id: str) -> ApprovalRequest:
        """Let a waiting tool call run. Raises NotFound (unknown id) or Conflict (already decided)."""
        return self.approvals.approve(approval_id)

    def deny_tool_call(self, approval_id: str, reason: str = "") -> ApprovalRequest:
        """Refuse a waiting tool call; ``reason`` reaches the model. Raises NotFound or Conflict."""
        return self.approvals.deny(approval_id, reason)

    async def telemetry_summary(self, agent_id: str | None = None) -> TelemetrySummary:
        """Message, agent, room, task, token and latency statistics (one agent's with ``agent_id``).

        Everything published before the call is included. Raises InvalidAgentId / AgentNotFound.
        """
        if agent_id is not None:
            self.get_agent(agent_id)
        await self.telemetry.flush()
        return self.telemetry.summary(agent_id)

    def queue_depths(self) -> dict[str, int]:
        """Work waiting now: ``turns`` queued behind their conversation's writer (or a paused
        agent's gate), ``inbox`` bus messages delivered to agents and not yet processed."""
        return {
            "turns": sum(r.queued for r in self.runtimes.all()),
            "inbox": self.inbox.pending_total(),
        }

    # Providers ---------------------------------------------------------------------------------

    def list_providers(self) -> list[Provider]:
        """Named provider endpoints (``<name>:<model>``), from the settings and the API."""
        return self.providers.list()

    def get_provider(self, name: str) -> Provider:
        """Raises ProviderNotFound."""
        return self.providers.get(name)

    async def put_provider(
        self,
        name: str,
        *,
        base_url: str,
        kind: str = "openai",
        api_key_env: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Provider, bool]:
        """Define or replace a provider (persisted); returns it and whether it is new.

        Raises:
            ValidationFailed: a built-in or malformed name, or a bad field.
        """
        config = _provider_settings(kind=kind, base_url=base_url, api_key_env=api_key_env, headers=dict(headers or {}))
        return await self.providers.put(name, config)

    async def delete_provider(self, name: str) -> Provider:
        """Remove a provider defined over the API. Raises ProviderNotFound or Conflict (defined in settings)."""
        return await self.providers.delete(name)

    def tool_stats(self, agent_id: str | None = None) -> dict[str, Any]:
        """Allowed, denied (by reason), failed and timed-out tool calls, per agent and per tool."""
        return self.tools.policy.stats(agent_id)

    async def attach_mcp_server(
        self,
        name: str,
        *,
        command: str | None = None,
        args: tuple[str, ...] | list[str] = (),
        env: Mapping[str, str] | None = None,
        url: str | None = None,
        agent_id: str | None = None,
    ) -> MCPServerInfo:
        """Connect an MCP server (``command`` over stdio, or a streamable-HTTP ``url``) and offer its
        tools as ``mcp__<name>__<tool>`` to every agent, or only to ``agent_id``."""
        if agent_id is not None:
            self.get_agent(agent_id)
        return await self.mcp.attach(name, command=command, args=tuple(args), env=env, url=url, agent_id=agent_id)

    async def detach_mcp_server(self, name: str) -> MCPServerInfo:
        """Remove an MCP server's tools and close its session. Raises NotFound."""
        return await self.mcp.detach(name)

    def mcp_servers(self, agent_id: str | None = None) -> list[MCPServerInfo]:
        return self.mcp.servers(agent_id)

    # Memory ----------------------------------------------------------------------------------
    # ``agent_id`` is the caller (None = the default persona): it sees shared memories and its own
    # private ones, authors what it adds, and may change or delete what it can see.

    async def memory_add(
        self,
        text: str,
        *,
        agent_id: str | None = None,
        scope: Scope = "shared",
        tags: tuple[str, ...] | list[str] = (),
        metadata: Mapping[str, Any] | None = None,
        source_conversation_id: str | None = None,
        source_message_id: str | None = None,
    ) -> Memory:
        """Store a memory authored by ``agent_id``. Raises ValidationFailed / InvalidAgentId."""
        author = validate_agent_id(agent_id or DEFAULT_AGENT_ID)
        memory_id = await self.memory.add(
            text, metadata, author=author, scope=scope, tags=tags,
            source_conversation_id=source_conversation_id, source_message_id=source_message_id,
        )
        return await self.memory.get(memory_id, agent_id=author)

    async def memory_search(
        self,
        query: str,
        *,
        agent_id: str | None = None,
        k: int = 5,
        author: str | None = None,
        scope: Scope | None = None,
        tags: tuple[str, ...] | list[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[MemoryHit]:
        """Hybrid (keyword + vector) search over what ``agent_id`` may see, best first."""
        return await self.memory.search(
            query, k, agent_id=agent_id or DEFAULT_AGENT_ID, author=author, scope=scope, tags=tags,
            since=since, until=until, mode=mode,
        )

    async def memory_get(self, memory_id: str, *, agent_id: str | None = None) -> Memory:
        """One memory. Raises MemoryNotFound (404) when it is missing or another agent's private one."""
        return await self.memory.get(memory_id, agent_id=agent_id or DEFAULT_AGENT_ID)

    async def memory_list(
        self,
        *,
        agent_id: str | None = None,
        author: str | None = None,
        scope: Scope | None = None,
        tags: tuple[str, ...] | list[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[Memory]:
        """Visible memories, newest first; page with ``before`` = the last id of the previous page."""
        return await self.memory.list(
            agent_id=agent_id or DEFAULT_AGENT_ID, author=author, scope=scope, tags=tags,
            since=since, until=until, limit=limit, before=before,
        )

    async def memory_update(
        self,
        memory_id: str,
        *,
        agent_id: str | None = None,
        text: str | None = None,
        tags: tuple[str, ...] | list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        scope: Scope | None = None,
    ) -> Memory:
        """Change a visible memory. Raises MemoryNotFound, or Conflict when a non-author changes scope."""
        return await self.memory.update(
            memory_id, agent_id=agent_id or DEFAULT_AGENT_ID, text=text, tags=tags, metadata=metadata, scope=scope
        )

    async def memory_delete(self, memory_id: str, *, agent_id: str | None = None) -> Memory:
        """Delete a visible memory and return it. Raises MemoryNotFound."""
        return await self.memory.delete(memory_id, agent_id=agent_id or DEFAULT_AGENT_ID)

    async def memory_stats(self) -> MemoryStats:
        """Counts per scope and author, the embedder (``none`` = keyword only) and index state."""
        return await self.memory.stats()

    # Charter ---------------------------------------------------------------------------------

    async def charter_get(self) -> Charter:
        """The workspace charter (``context/TASK_CHARTER.md``, else ``.json``).

        Raises:
            NotFound: there is no charter yet. ValidationFailed: the file is malformed (line named).
        """
        return await self.charters.get()

    async def charter_lint(self) -> list[Problem]:
        """Placeholder lint of the workspace charter; empty means ready to work from. Raises NotFound."""
        return lint(await self.charters.get(), workspace=self.workspace)

    async def run_charter(
        self,
        *,
        goal: str | None = None,
        planner: str | None = None,
        implementer: str,
        qa: str,
        parent: str = "human",
        max_rounds: int = 3,
        timeout: float | None = 600.0,
    ) -> CharterRunResult:
        """Drive planner → implementer → QA over the charter until QA approves (see docs/charter.md).

        ``goal=None`` with ``planner=None`` works from the stored charter as written. Placeholders
        halt the run with a ``status`` message to ``parent``; the final verdict is sent to ``parent``
        as a ``verdict`` message. Raises ValidationFailed / AgentNotFound for bad arguments only.
        """
        workflow = CharterWorkflow(self, self.charters, timeout=timeout)
        return await workflow.run(goal, planner=planner, implementer=implementer, qa=qa, parent=parent,
                                  max_rounds=max_rounds)

    # Tasks -----------------------------------------------------------------------------------

    async def run_task(
        self,
        prompt: str,
        *,
        agent_id: str | None = None,
        agent_role: str | None = None,
        max_iterations: int = 10,
        context: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> Task:
        """Start a task in the background and return it (poll ``get_task`` or ``wait_task``)."""
        if agent_id is not None and agent_role is not None:
            raise ValidationFailed("give agent_id or agent_role, not both", field="agent_role")
        role = agent_role or (context or {}).get("agent_role")
        if agent_id is None and role is not None:
            spec = self.agent_for_role(str(role))
        else:
            spec, _ = await self._resolve_agent(agent_id)
        if model is not None:
            model = self.models.validate(model)
        options: dict[str, Any] = {}
        if context:
            options["context"] = dict(context)
        if model:
            options["model"] = model
        if role:
            options["agent_role"] = role
        return await self.tasks.create(spec.agent_id, prompt, max_iterations=max_iterations, options=options)

    def agent_for_role(self, role: str) -> AgentSpec:
        """The agent that fills ``role``: the coordinator's round-robin over the agents assigned to it
        (``assign_role``), else the first unpaused agent whose spec lists the role."""
        validate_agent_id(role, field="agent_role")
        picked = self.coordinator.pick(role)
        if picked is not None:
            return picked
        candidates = [s for s in self.agents.list(role=role) if not s.paused] or self.agents.list(role=role)
        if not candidates:
            raise AgentNotFound(f"no agent has the role {role!r}; give an agent that role first", field="agent_role")
        return candidates[0]

    async def get_task(self, task_id: str) -> Task:
        return await self.tasks.get(task_id)

    async def wait_task(self, task_id: str, timeout: float | None = None) -> Task:
        return await self.tasks.wait(task_id, timeout)

    async def cancel_task(self, task_id: str) -> Task:
        return await self.tasks.cancel(task_id)

    async def list_tasks(self, *, agent_id: str | None = None) -> list[Task]:
        return await self.tasks.list(agent_id=agent_id)

    async def _task_turn(self, agent_id: str, conversation_id: str, text: str, options: Mapping[str, Any]) -> str:
        result = await self.chat(
            text,
            agent_id=agent_id,
            conversation_id=conversation_id,
            context=options.get("context"),
            model=options.get("model"),
            task_id=options.get("task_id"),
        )
        return result.text

    async def _task_conversation(self, agent_id: str) -> str:
        conv = await self.conversations.create(agent_id, kind="task", run_mode="task", title="task")
        return conv.id
