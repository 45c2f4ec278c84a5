"""``penguin serve``: run the HTTP API with uvicorn on the embedded defaults.

Settings come from the environment (``PENGUIN_DATA_DIR``, ``PENGUIN_MODEL``, ``PENGUIN_API_KEY``,
``PENGUIN_MAX_BODY_BYTES``, ``PENGUIN_ACCESS_LOG``, ...) and ``penguin.toml``. Security by default: the server binds
127.0.0.1, and refuses any address reachable from other machines unless an API key is configured,
in which case every route except ``/api/v1/health`` requires ``Authorization: Bearer <key>``.

Before anything starts, the server claims its data directory (a second server on it exits with the
owner's pid and URL, see ``storage.owner``) and binds its port (a taken port is one line, not a
traceback); then it opens the database and writes its URL into the data directory's lock, so
``penguin`` commands run in that folder talk to it instead of opening the database themselves.

Shutdown (SIGINT/SIGTERM) is graceful: uvicorn stops accepting connections and lets open
requests finish, then the app's lifespan drains in-flight turns (WebSocket ones included) for
``shutdown_grace`` seconds, cancels what is left (the engine records the cancelled turns) and
stops the core.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import uvicorn
import uvicorn.config

from penguin.api.app import create_app
from penguin.config import Settings
from penguin.core import PenguinCore
from penguin.errors import UserError
from penguin.telemetry.logs import log_config

#: uvicorn's own logger: the "running on" line reads like the rest of the server's startup.
_log = logging.getLogger("uvicorn.error")


class InsecureBind(UserError):
    """Binding a non-loopback address without an API key would expose the API unauthenticated."""

    code = "insecure-bind"
    title = "Refusing to serve without an API key"


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address (127.0.0.0/8, ::1)."""
    candidate = host.strip("[]")
    try:
        return ipaddress.ip_address(candidate).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(candidate, None)
    except socket.gaierror:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)


def check_bind(host: str, settings: Settings) -> None:
    """Refuse a non-loopback ``host`` unless an API key is configured.

    Raises:
        InsecureBind: with how to fix it.
    """
    if not is_loopback(host) and not settings.api_key:
        raise InsecureBind(
            f"{host!r} is reachable from other machines and no API key is set; set PENGUIN_API_KEY "
            "(clients then send 'Authorization: Bearer <key>') or bind 127.0.0.1",
            field="host",
        )


class PortInUse(UserError):
    """The address the server should listen on is taken (or not ours to bind)."""

    code = "port-in-use"
    title = "Port in use"


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (listening starts when the server serves on it).

    Binding before anything else starts turns a taken port into one clear error instead of a
    traceback from deep inside the server's startup.

    Raises:
        PortInUse: the address is in use or cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise PortInUse(f"cannot resolve {host!r}: {exc.strerror}", field="host") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"{host}:{port} is already in use by another program; pick another with --port "
                "(or PENGUIN_PORT)",
                field="port",
            ) from None
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}", field="port") from None
    sock.set_inheritable(False)
    return sock


def build_server(
    host: str | None = None,
    port: int | None = None,
    *,
    settings: Settings | None = None,
    core: PenguinCore | None = None,
    shutdown_grace: float = 30.0,
    log_level: str = "info",
) -> uvicorn.Server:
    """A configured uvicorn server for the API (not started).

    Args:
        core: the core to serve (the app stops it on shutdown); default: a new one from ``settings``.

    Raises:
        InsecureBind: non-loopback ``host`` without an API key.
    """
    settings = core.settings if core is not None else settings or Settings()
    host = host or settings.host
    port = settings.port if port is None else port
    check_bind(host, settings)
    # A server stops its core when it shuts down, passed in or not: uvicorn re-raises a handled
    # SIGTERM once it returns, so nothing after ``serve`` may be relied on to run.
    app = create_app(core, settings=settings, shutdown_grace=shutdown_grace, stop_core=True)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level=log_level,
        log_config=log_config(settings.log_format, log_level),
        access_log=settings.access_log,
        ws_max_size=settings.max_body_bytes,
        # Requests get the same grace as turns; the lifespan then drains what is left.
        timeout_graceful_shutdown=int(shutdown_grace) or 1,
        server_header=False,
    )
    return uvicorn.Server(config)


@dataclass(slots=True)
class Launch:
    """A server ready to run: the core owns the data directory and the socket is bound."""

    core: PenguinCore
    server: uvicorn.Server
    sock: socket.socket
    url: str

    async def serve(self, *, on_ready: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start the core, advertise the URL, serve until told to stop, then stop the core.

        Errors of the core's start (a newer database, another owner) propagate before anything
        listens. ``on_ready`` runs once the server accepts connections. The app's lifespan stops
        the core on shutdown; the ``finally`` here covers a server that never got that far.
        """
        try:
            await self.core.start()
            await self.core.advertise(self.url)
            serving = asyncio.create_task(self.server.serve(sockets=[self.sock]))
            try:
                await _wait_serving(self.server, serving)
                _log.info("Uvicorn running on %s (Press CTRL+C to quit)", self.url)
                if on_ready is not None:
                    await on_ready()
            except BaseException:
                self.server.should_exit = True
                await asyncio.wait({serving}, timeout=15)
                raise
            await serving
        finally:
            self.sock.close()
            await self.core.stop()


def launch(
    host: str | None = None,
    port: int | None = None,
    *,
    settings: Settings | None = None,
    role: str = "serve",
    shutdown_grace: float = 30.0,
    log_level: str = "info",
) -> Launch:
    """Claim the data directory and bind the port, in that order, before anything starts.

    Raises:
        InsecureBind: non-loopback ``host`` without an API key.
        DataDirInUse: another process owns the data directory (the error names it).
        PortInUse: the port is taken.
    """
    settings = settings or Settings()
    host = host or settings.host
    port = settings.port if port is None else port
    check_bind(host, settings)
    core = PenguinCore(settings)
    core.owner.acquire(role=role)
    try:
        sock = bind_socket(host, port)
    except BaseException:
        core.owner.release()
        raise
    bound_port = int(sock.getsockname()[1])
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    server = build_server(host, bound_port, core=core, shutdown_grace=shutdown_grace, log_level=log_level)
    return Launch(core=core, server=server, sock=sock, url=f"http://{shown}:{bound_port}")


def serve(
    host: str | None = None,
    port: int | None = None,
    *,
    settings: Settings | None = None,
    shutdown_grace: float = 30.0,
    log_level: str = "info",
) -> None:
    """Run the API until SIGINT/SIGTERM (defaults: ``Settings.host``/``port``, 127.0.0.1:8000).

    Raises:
        InsecureBind, DataDirInUse, PortInUse: before anything starts.
        SchemaMismatch: the database needs ``penguin db upgrade``, or a newer Penguin made it (raised
            by the core's start, before the server listens).
    """
    ready = launch(host, port, settings=settings, shutdown_grace=shutdown_grace, log_level=log_level)
    freeze_startup_heap()
    with asyncio.Runner(loop_factory=ready.server.config.get_loop_factory()) as runner:
        runner.run(ready.serve())


async def _wait_serving(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes startup only as a flag
        if serving.done():
            serving.result()
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.02)


def freeze_startup_heap() -> None:
    """Keep what startup built (modules, classes, the app) out of the collector's full passes.

    It lives as long as the process, yet every full collection walked it again: one took ~50 ms
    under load, a stall of every request in flight.
    """
    gc.collect()
    gc.freeze()


__all__ = [
    "InsecureBind",
    "Launch",
    "PortInUse",
    "bind_socket",
    "build_server",
    "check_bind",
    "freeze_startup_heap",
    "is_loopback",
    "launch",
    "serve",
]
