"""Where a CLI command runs: in this process, or as a client of the server that owns the folder.

A data directory has one owner (``storage.owner``). When ``penguin serve`` owns it, a command run
in the same folder must not open the database behind the server's back, so it talks to the server
over HTTP (``PenguinClient``) instead; ``--url`` / ``PENGUIN_URL`` point it at any server. With no
owner the command runs an in-process ``PenguinAgent``, which owns the folder while it runs.

Both backends answer with the same plain data (the JSON the API returns), so every command prints
the same thing whichever way it ran.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from rich.console import Console

from penguin.config import Settings
from penguin.errors import DataDirInUse

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One streamed event of a CLI chat: ``delta`` (text), ``tool_call`` (name, arguments),
    ``error`` (detail, status) or ``final`` (result)."""

    type: str
    data: dict[str, Any]


class Backend(Protocol):
    """What the CLI's commands need from Penguin."""

    #: Where commands run, for messages: ``in-process`` or the server's URL.
    where: str

    def list_agents(self) -> list[dict[str, Any]]: ...

    def get_agent(self, agent_id: str) -> dict[str, Any]: ...

    def create_agent(
        self, agent_id: str, *, system_prompt: str, model: str | None, roles: Sequence[str]
    ) -> dict[str, Any]: ...

    def remove_agent(self, agent_id: str) -> dict[str, Any]: ...

    def chat(self, text: str, *, agent_id: str | None, conversation_id: str | None,
             model: str | None) -> dict[str, Any]: ...

    def stream(self, text: str, *, agent_id: str | None, conversation_id: str | None,
               model: str | None) -> Iterator[StreamItem]: ...

    def default_model(self) -> str | None: ...

    def prepare(self, console: Console, *, model: str | None, agent_id: str | None) -> None:
        """Get the model a chat would use ready now, showing progress on ``console``."""
        ...

    def close(self) -> None: ...


class LocalBackend:
    """Commands on an in-process ``PenguinAgent`` (this process owns the data directory meanwhile)."""

    where = "in-process"

    def __init__(self, settings: Settings) -> None:
        from penguin.agent import PenguinAgent

        self._settings = settings
        self._agent = PenguinAgent(settings)

    def list_agents(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self._agent.list_agents()]

    def get_agent(self, agent_id: str) -> dict[str, Any]:
        return self._agent.get_agent(agent_id).to_dict()

    def create_agent(
        self, agent_id: str, *, system_prompt: str, model: str | None, roles: Sequence[str]
    ) -> dict[str, Any]:
        return self._agent.create_agent(agent_id, system_prompt=system_prompt, model=model, roles=list(roles)).to_dict()

    def remove_agent(self, agent_id: str) -> dict[str, Any]:
        return self._agent.remove_agent(agent_id).to_dict()

    def chat(self, text: str, *, agent_id: str | None, conversation_id: str | None,
             model: str | None) -> dict[str, Any]:
        return self._agent.chat(text, agent_id=agent_id, conversation_id=conversation_id, model=model).to_dict()

    def stream(self, text: str, *, agent_id: str | None, conversation_id: str | None,
               model: str | None) -> Iterator[StreamItem]:
        for event in self._agent.stream(text, agent_id=agent_id, conversation_id=conversation_id, model=model):
            yield StreamItem(event.type, dict(event.data))

    def default_model(self) -> str | None:
        return self._settings.resolved_default_model()

    def prepare(self, console: Console, *, model: str | None, agent_id: str | None) -> None:
        from penguin.cli.progress import prepare_model

        prepare_model(self._agent, console, model=model, agent_id=agent_id)  # local weights: bar, then spinner

    def close(self) -> None:
        self._agent.close()


class RemoteBackend:
    """Commands as HTTP calls to a running server (``PenguinClient`` on a loop of this thread)."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 600.0) -> None:
        from penguin.api_client import PenguinClient

        self.where = url
        self._runner = asyncio.Runner()
        self._client = PenguinClient(url, api_key=api_key, timeout=timeout)

    def list_agents(self) -> list[dict[str, Any]]:
        return [_agent_dict(a) for a in self._runner.run(self._client.list_agents())]

    def get_agent(self, agent_id: str) -> dict[str, Any]:
        return _agent_dict(self._runner.run(self._client.get_agent(agent_id)))

    def create_agent(
        self, agent_id: str, *, system_prompt: str, model: str | None, roles: Sequence[str]
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"system_prompt": system_prompt, "roles": list(roles)}
        if model is not None:
            fields["model"] = model
        return _agent_dict(self._runner.run(self._client.create_agent(agent_id, **fields)))

    def remove_agent(self, agent_id: str) -> dict[str, Any]:
        return _agent_dict(self._runner.run(self._client.delete_agent(agent_id)))

    def chat(self, text: str, *, agent_id: str | None, conversation_id: str | None,
             model: str | None) -> dict[str, Any]:
        options = _chat_options(agent_id, conversation_id, model)
        return self._runner.run(self._client.chat(text, options)).model_dump(mode="json")

    def stream(self, text: str, *, agent_id: str | None, conversation_id: str | None,
               model: str | None) -> Iterator[StreamItem]:
        events = self._client.stream_chat(text, _chat_options(agent_id, conversation_id, model))
        try:
            while True:
                try:
                    event = self._runner.run(_next(events))
                except StopAsyncIteration:
                    return
                data = event.model_dump(mode="json", exclude_none=True)
                if event.type == "error":
                    problem = event.problem or {}
                    data = {"detail": problem.get("detail", "the turn failed"), "status": problem.get("status", 500)}
                yield StreamItem(event.type, data)
        finally:
            self._runner.run(events.aclose())

    def default_model(self) -> str | None:
        return None  # the server's own default; it does not say which

    def prepare(self, console: Console, *, model: str | None, agent_id: str | None) -> None:
        """Nothing to do here: the server prepares its models (and logs it)."""

    def close(self) -> None:
        try:
            self._runner.run(self._client.aclose())
        finally:
            self._runner.close()


async def _next(events: AsyncGenerator[T, None]) -> T:
    return await events.__anext__()


def _agent_dict(info: Any) -> dict[str, Any]:
    data: dict[str, Any] = info.model_dump(mode="json", exclude={"status"})
    return data


def _chat_options(agent_id: str | None, conversation_id: str | None, model: str | None) -> Any:
    from penguin.api_client import ChatOptions

    return ChatOptions(agent_id=agent_id, conversation_id=conversation_id, model=model)


def server_url(explicit: str | None, settings: Settings) -> str | None:
    """The server CLI commands should talk to: ``--url``/``PENGUIN_URL``, else the data directory's
    owner when it serves an API, else None (run in-process).

    Raises:
        DataDirInUse: a process without an API (a script, another CLI command) owns the directory.
    """
    url = explicit or os.environ.get("PENGUIN_URL") or None
    if url:
        return url
    from penguin.storage.owner import read_owner

    owner = read_owner(settings.data_dir)
    if owner is None:
        return None
    if owner.url:
        return owner.url
    raise DataDirInUse(
        f"the data directory {str(settings.data_dir.resolve())!r} is in use by {owner.describe()}, which "
        "serves no API; wait for it to finish, or point the command at a server with --url",
        field="data_dir",
        owner_pid=owner.pid,
        owner_url=None,
    )


def open_backend(url: str | None, settings: Settings) -> Backend:
    """The backend for one CLI command (see the module docstring).

    Raises:
        DataDirInUse: the folder is owned by a process that serves no API.
    """
    remote = server_url(url, settings)
    if remote is not None:
        return RemoteBackend(remote, api_key=settings.api_key)
    return LocalBackend(settings)


__all__ = ["Backend", "LocalBackend", "RemoteBackend", "StreamItem", "open_backend", "server_url"]
