"""Tasks and RunMode: autonomous multi-turn work on behalf of one agent, with its own id.

A task runs its agent in a dedicated ``task`` conversation: the prompt is the first turn, then
the agent is asked to continue until it replies with the completion marker, the iteration bound
is reached, or the task is cancelled. Status moves queued → running → completed | failed |
cancelled and is persisted at each step with progress (iteration, last reply).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from penguin.errors import Conflict, PenguinError, TaskNotFound, TurnCancelled, ValidationFailed
from penguin.naming import new_id
from penguin.storage.database import Database
from penguin.storage.schema import tasks as tasks_t

COMPLETION_MARKER = "TASK_COMPLETE"
CONTINUE_PROMPT = (
    "Continue working on the task. When it is fully done, reply with your final result followed by "
    f"the line {COMPLETION_MARKER}."
)


def is_complete(reply: str) -> bool:
    """The agent signals completion with the marker on its own line or at the very end."""
    text = reply.rstrip()
    return text.endswith(COMPLETION_MARKER) or any(line.strip() == COMPLETION_MARKER for line in text.splitlines())


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


@dataclass(slots=True, kw_only=True)
class Task:
    id: str
    agent_id: str
    prompt: str
    status: TaskStatus = TaskStatus.QUEUED
    conversation_id: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    result: str | None = None
    error: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    tenant_id: str = "default"
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "prompt": self.prompt,
            "status": self.status.value,
            "conversation_id": self.conversation_id,
            "progress": self.progress,
            "result": self.result,
            "error": self.error,
            "options": self.options,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


TurnFn = Callable[[str, str, str, Mapping[str, Any]], Awaitable[str]]
"""(agent_id, conversation_id, text, options) → reply text; runs one turn through the core."""
ConversationFn = Callable[[str], Awaitable[str]]
"""agent_id → a new task conversation id."""


class TaskManager:
    def __init__(
        self,
        db: Database,
        *,
        tenant_id: str,
        run_turn: TurnFn,
        new_conversation: ConversationFn,
        on_change: Callable[[Task], Awaitable[None]] | None = None,
    ) -> None:
        self._db = db
        self._tenant = tenant_id
        self._run_turn = run_turn
        self._new_conversation = new_conversation
        self._on_change = on_change
        self._tasks: dict[str, Task] = {}
        self._running: dict[str, asyncio.Task[None]] = {}

    async def recover(self) -> None:
        """Mark tasks left running by a previous process as failed (their turns died with it)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                sa.update(tasks_t)
                .where(tasks_t.c.tenant_id == self._tenant, tasks_t.c.status.in_(["queued", "running"]))
                .values(
                    status="failed",
                    error=orjson.dumps({"detail": "the server stopped while the task was running"}).decode(),
                    updated_at=time.time(),
                )
            )

    async def create(
        self, agent_id: str, prompt: str, *, max_iterations: int = 10, options: Mapping[str, Any] | None = None
    ) -> Task:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValidationFailed("prompt must be a non-empty string", field="prompt")
        if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or not 1 <= max_iterations <= 1000:
            raise ValidationFailed("max_iterations must be an integer between 1 and 1000", field="max_iterations")
        task = Task(
            id=new_id("task"),
            agent_id=agent_id,
            prompt=prompt,
            options={**(options or {}), "max_iterations": max_iterations},
            tenant_id=self._tenant,
        )
        task.conversation_id = await self._new_conversation(agent_id)
        async with self._db.transaction() as conn:
            await conn.execute(sa.insert(tasks_t).values(**self._row(task)))
        self._tasks[task.id] = task
        self._running[task.id] = asyncio.create_task(self._run(task), name=f"penguin-task-{task.id}")
        return task

    async def get(self, task_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is not None:
            return task
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(tasks_t).where(tasks_t.c.id == str(task_id)[:64], tasks_t.c.tenant_id == self._tenant)
                )
            ).first()
        if row is None:
            raise TaskNotFound(f"no task {str(task_id)[:80]!r}", field="task_id")
        return Task(
            id=row.id,
            agent_id=row.agent_id,
            prompt=row.prompt,
            status=TaskStatus(row.status),
            conversation_id=row.conversation_id,
            progress=orjson.loads(row.progress),
            result=row.result,
            error=orjson.loads(row.error) if row.error else None,
            options=orjson.loads(row.options),
            tenant_id=row.tenant_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def list(self, *, agent_id: str | None = None, limit: int = 100) -> list[Task]:
        query = sa.select(tasks_t.c.id).where(tasks_t.c.tenant_id == self._tenant)
        if agent_id is not None:
            query = query.where(tasks_t.c.agent_id == agent_id)
        async with self._db.read() as conn:
            ids = [r.id for r in await conn.execute(query.order_by(tasks_t.c.created_at.desc()).limit(limit))]
        return [await self.get(i) for i in ids]

    async def cancel(self, task_id: str) -> Task:
        task = await self.get(task_id)
        if task.status.finished:
            raise Conflict(f"task {task_id!r} is already {task.status.value}", field="task_id")
        running = self._running.get(task_id)
        if running is not None:
            running.cancel()
            await asyncio.wait((running,))
        return task

    async def wait(self, task_id: str, timeout: float | None = None) -> Task:
        running = self._running.get(task_id)
        if running is not None:
            await asyncio.wait((running,), timeout=timeout)
        return await self.get(task_id)

    async def aclose(self) -> None:
        for running in list(self._running.values()):
            running.cancel()
        if self._running:
            await asyncio.wait(list(self._running.values()))

    async def _run(self, task: Task) -> None:
        max_iterations = int(task.options.get("max_iterations", 10))
        turn_options = {k: v for k, v in task.options.items() if k in ("model", "context")}
        turn_options["task_id"] = task.id
        try:
            await self._update(
                task, status=TaskStatus.RUNNING, progress={"iteration": 0, "max_iterations": max_iterations}
            )
            conversation_id = task.conversation_id or await self._new_conversation(task.agent_id)
            text = task.prompt
            reply = ""
            for iteration in range(1, max_iterations + 1):
                reply = await self._run_turn(task.agent_id, conversation_id, text, turn_options)
                done = is_complete(reply)
                await self._update(
                    task,
                    progress={
                        "iteration": iteration,
                        "max_iterations": max_iterations,
                        "last_reply": reply[-2000:],
                    },
                )
                if done:
                    break
                text = CONTINUE_PROMPT
            done = is_complete(reply)
            result = reply.rstrip().removesuffix(COMPLETION_MARKER).strip() if done else reply.strip()
            stop = "completed" if done else "max_iterations"
            await self._update(
                task, status=TaskStatus.COMPLETED, result=result, progress={**task.progress, "stop_reason": stop}
            )
        except (asyncio.CancelledError, TurnCancelled):
            await asyncio.shield(self._update(task, status=TaskStatus.CANCELLED))
        except PenguinError as exc:
            await self._update(task, status=TaskStatus.FAILED, error=exc.to_problem())
        except Exception as exc:  # recorded on the task, never lost in a background task
            await self._update(task, status=TaskStatus.FAILED, error={"detail": f"{type(exc).__name__}: {exc}"})
        finally:
            self._running.pop(task.id, None)
            self._tasks.pop(task.id, None)

    async def _update(self, task: Task, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(task, key, value)
        task.updated_at = time.time()
        async with self._db.transaction() as conn:
            await conn.execute(sa.update(tasks_t).where(tasks_t.c.id == task.id).values(**self._row(task)))
        if self._on_change is not None:
            await self._on_change(task)

    @staticmethod
    def _row(task: Task) -> dict[str, Any]:
        return {
            "id": task.id,
            "tenant_id": task.tenant_id,
            "agent_id": task.agent_id,
            "conversation_id": task.conversation_id,
            "prompt": task.prompt,
            "status": task.status.value,
            "progress": orjson.dumps(task.progress).decode(),
            "result": task.result,
            "error": orjson.dumps(task.error).decode() if task.error is not None else None,
            "options": orjson.dumps(task.options, default=str).decode(),
            "created_at": task.created_at,
            "updated_at": task.updated_at,
        }
