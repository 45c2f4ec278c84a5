"""``PenguinAgent``: a synchronous facade over an in-process ``PenguinCore``.

The core lives on its own event loop in a daemon thread, so the helper works the same in a
script, in a notebook and when called from inside a running event loop: every method blocks
until the result is ready and never returns an ``asyncio.Task``. It is safe to call from many
threads at once; calls are funnelled onto the core's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from penguin.agents.spec import AgentSpec
from penguin.config import Settings
from penguin.conversations.messages import Checkpoint, Conversation, Message
from penguin.core import PenguinCore
from penguin.engine.results import ChatResult, TurnEvent
from penguin.engine.tasks import Task
from penguin.models.progress import ModelProgress

T = TypeVar("T")

PROJECT_DOCS = ("PENGUIN.md", "AGENTS.md", "README.md")
CHARTER_FILES = ("context/TASK_CHARTER.md", "context/TASK_CHARTER.json", "TASK_CHARTER.md", "TASK_CHARTER.json")
_DOC_LIMIT = 20_000


class PenguinAgent:
    """Synchronous Penguin for scripts, notebooks and tests.

    Args:
        settings: core settings (default: from the environment).
        project_dir: folder whose ``PENGUIN.md``, ``AGENTS.md`` and README are loaded as project
            docs (``project_docs``) and whose charter files are discovered (``charter_paths``).
        timeout: seconds any single call may take (None = no limit).
        **overrides: settings fields, e.g. ``data_dir=...``, ``model="scripted:echo"``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        project_dir: str | Path | None = None,
        timeout: float | None = None,
        **overrides: Any,
    ) -> None:
        self._timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="penguin-agent-loop", daemon=True)
        self._thread.start()
        self._closed = False
        self.core = PenguinCore(settings, **overrides)
        self.project_dir = Path(project_dir) if project_dir is not None else Path.cwd()
        self.project_docs = self._load_docs()
        try:
            self._call(self.core.start())
        except BaseException:
            self._shutdown_loop()
            raise

    # Plumbing --------------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed and self._loop.is_closed():
            coro.close()
            raise RuntimeError("this PenguinAgent is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("PenguinAgent methods cannot be called from its own event loop thread")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(self._timeout)

    def _load_docs(self) -> dict[str, str]:
        docs = {}
        for name in PROJECT_DOCS:
            path = self.project_dir / name
            if path.is_file():
                docs[name] = path.read_text(encoding="utf-8", errors="replace")[:_DOC_LIMIT]
        return docs

    @property
    def charter_paths(self) -> list[Path]:
        """Charter files found in the project folder and in the shared workspace (``context/``)."""
        found = []
        for base in (self.project_dir, self.core.workspace.root):
            found += [base / p for p in CHARTER_FILES if (base / p).is_file()]
        return found

    def project_context(self) -> str:
        """Project docs joined as one text, ready to use in a persona."""
        return "\n\n".join(f"# {name}\n{text}" for name, text in self.project_docs.items())

    # Agents ----------------------------------------------------------------------------------

    def create_agent(self, agent_id: str, *, exist_ok: bool = False, **fields: Any) -> AgentSpec:
        """Register a persona (``exist_ok=True``: update it when it exists instead of raising)."""
        return self._call(self.core.create_agent(agent_id, exist_ok=exist_ok, **fields))

    def register_persona(
        self, agent_id: str, system_prompt: str, *, with_project_docs: bool = False, **fields: Any
    ) -> AgentSpec:
        """Create a persona (or update it if it exists), optionally with the project docs appended."""
        prompt = system_prompt + ("\n\n" + self.project_context() if with_project_docs and self.project_docs else "")
        if agent_id in self.core.agents:
            return self.update_agent(agent_id, system_prompt=prompt, **fields)
        return self.create_agent(agent_id, system_prompt=prompt, **fields)

    def get_agent(self, agent_id: str) -> AgentSpec:
        return self.core.get_agent(agent_id)

    def list_agents(self) -> list[AgentSpec]:
        return self.core.list_agents()

    def update_agent(self, agent_id: str, **changes: Any) -> AgentSpec:
        return self._call(self.core.update_agent(agent_id, **changes))

    def remove_agent(self, agent_id: str) -> AgentSpec:
        return self._call(self.core.remove_agent(agent_id))

    def switch_model(self, agent_id: str, model: str) -> AgentSpec:
        return self._call(self.core.switch_model(agent_id, model))

    def pause(self, agent_id: str) -> AgentSpec:
        return self._call(self.core.pause_agent(agent_id))

    def resume(self, agent_id: str) -> AgentSpec:
        return self._call(self.core.resume_agent(agent_id))

    def cancel(self, agent_id: str, conversation_id: str | None = None) -> list[str]:
        async def run() -> list[str]:
            return self.core.cancel(agent_id, conversation_id)

        return self._call(run())

    # Chat ------------------------------------------------------------------------------------

    def prepare_model(
        self, model: str | None = None, *, agent_id: str | None = None, progress: ModelProgress | None = None
    ) -> str:
        """Load the model a chat would use now (local weights: assembled once per machine, then
        loaded), reporting to ``progress``; options as ``PenguinCore.prepare_model``."""
        return self._call(self.core.prepare_model(model, agent_id=agent_id, progress=progress))

    def chat(self, text: str, agent_id: str | None = None, **options: Any) -> ChatResult:
        """One turn; options as ``PenguinCore.chat`` (conversation_id, context, model, max_iterations...)."""
        return self._call(self.core.chat(text, agent_id=agent_id, **options))

    def stream(self, text: str, agent_id: str | None = None, **options: Any) -> Iterator[TurnEvent]:
        """Yield the turn's events as they happen (deltas, tool calls, final)."""
        events: queue.Queue[TurnEvent | BaseException | None] = queue.Queue()

        async def pump() -> None:
            try:
                async for event in self.core.stream_chat(text, agent_id=agent_id, **options):
                    events.put(event)
            except BaseException as exc:
                events.put(exc)
            finally:
                events.put(None)

        future = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        try:
            while (item := events.get(timeout=self._timeout)) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not future.done():
                future.cancel()

    def history(self, agent_id: str | None = None, conversation_id: str | None = None) -> list[Message]:
        return self._call(self.core.history(agent_id, conversation_id))

    def conversations(self, agent_id: str) -> list[Conversation]:
        return self._call(self.core.list_conversations(agent_id))

    def checkpoint(self, name: str, agent_id: str | None = None, conversation_id: str | None = None) -> Checkpoint:
        return self._call(self.core.checkpoint(name, agent_id=agent_id, conversation_id=conversation_id))

    def checkpoints(self, agent_id: str | None = None, conversation_id: str | None = None) -> list[Checkpoint]:
        return self._call(self.core.list_checkpoints(agent_id=agent_id, conversation_id=conversation_id))

    def rollback(self, checkpoint_id: str) -> Conversation:
        conv, _archive = self._call(self.core.rollback(checkpoint_id))
        return conv

    def branch(self, checkpoint_id: str, title: str = "") -> Conversation:
        return self._call(self.core.branch(checkpoint_id, title=title))

    # Messaging and coordination ----------------------------------------------------------------
    # Thin wrappers: the options and return types are those of the PenguinCore methods.

    def send_message(self, sender: str, recipient: str, content: str, **options: Any) -> Any:
        """Send a MessageBus message to an agent id, ``role:<name>`` or ``human``; returns the receipt."""
        return self._call(self.core.send_message(sender, recipient, content, **options))

    def ask(self, sender: str, recipient: str, content: str, **options: Any) -> Any:
        """Send and wait for the recipient's answer (fallbacks apply)."""
        return self._call(self.core.ask(sender, recipient, content, **options))

    def wait_receipt(self, message_id: str, recipient: str | None = None, timeout: float | None = None) -> Any:
        return self._call(self.core.wait_receipt(message_id, recipient, timeout=timeout))

    def create_room(self, name: str, members: Sequence[str] = (), **options: Any) -> Any:
        return self._call(self.core.create_room(name, members=members, **options))

    def post_to_room(self, room: str, sender: str, content: str, **options: Any) -> Any:
        return self._call(self.core.post_to_room(room, sender, content, **options))

    def assign_role(self, role: str, agent_ids: Sequence[str]) -> list[str]:
        return self._call(self.core.assign_role(role, agent_ids))

    def round_robin(self, role: str, text: str, **options: Any) -> Any:
        return self._call(self.core.round_robin(role, text, **options))

    def role_chain(self, roles: Sequence[str], text: str, **options: Any) -> Any:
        return self._call(self.core.role_chain(roles, text, **options))

    def broadcast(self, text: str, **options: Any) -> Any:
        return self._call(self.core.broadcast(text, **options))

    def route(self, text: str, **options: Any) -> Any:
        return self._call(self.core.route(text, **options))

    def spawn_agent(self, parent_id: str, child_id: str | None = None, **overrides: Any) -> AgentSpec:
        return self._call(self.core.spawn_agent(parent_id, child_id, **overrides))

    def delegate(self, parent_id: str, child_id: str, task: str, **options: Any) -> Any:
        return self._call(self.core.delegate(parent_id, child_id, task, **options))

    # Memory ------------------------------------------------------------------------------------

    def memory_add(self, text: str, **fields: Any) -> Any:
        return self._call(self.core.memory_add(text, **fields))

    def memory_search(self, query: str, **options: Any) -> Any:
        return self._call(self.core.memory_search(query, **options))

    # Tasks -----------------------------------------------------------------------------------

    def run_task(self, prompt: str, *, wait: bool = True, timeout: float | None = None, **options: Any) -> Task:
        task = self._call(self.core.run_task(prompt, **options))
        if wait:
            task = self._call(self.core.wait_task(task.id, timeout))
        return task

    def get_task(self, task_id: str) -> Task:
        return self._call(self.core.get_task(task_id))

    def cancel_task(self, task_id: str) -> Task:
        return self._call(self.core.cancel_task(task_id))

    # Lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self.core.stop(), self._loop).result(30)
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> PenguinAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; close() is the contract
        if not getattr(self, "_closed", True) and not self._loop.is_closed():
            with contextlib.suppress(Exception):  # interpreter shutdown
                self.close()
