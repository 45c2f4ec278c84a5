"""``penguin serve``: run the HTTP API with uvicorn on the embedded defaults.

Settings come from the environment (``PENGUIN_DATA_DIR``, ``PENGUIN_MODEL``, ``PENGUIN_API_KEY``,
``PENGUIN_MAX_BODY_BYTES``, ``PENGUIN_ACCESS_LOG``, ...) and ``penguin.toml``. Security by default: the server binds
127.0.0.1, and refuses any address reachable from other machines unless an API key is configured,
in which case every route except ``/api/v1/health`` requires ``Authorization: Bearer <key>``.

Shutdown (SIGINT/SIGTERM) is graceful: uvicorn stops accepting connections and lets open
requests finish, then the app's lifespan drains in-flight turns (WebSocket ones included) for
``shutdown_grace`` seconds, cancels what is left (the engine records the cancelled turns) and
stops the core.
"""

from __future__ import annotations

import gc
import ipaddress
import socket

import uvicorn

from penguin.api.app import create_app
from penguin.cli.db import check_schema
from penguin.config import Settings
from penguin.errors import UserError


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


def build_server(
    host: str | None = None,
    port: int | None = None,
    *,
    settings: Settings | None = None,
    shutdown_grace: float = 30.0,
    log_level: str = "info",
) -> uvicorn.Server:
    """A configured uvicorn server for the API (not started).

    Raises:
        InsecureBind: non-loopback ``host`` without an API key.
    """
    settings = settings or Settings()
    host = host or settings.host
    port = settings.port if port is None else port
    check_bind(host, settings)
    app = create_app(settings=settings, shutdown_grace=shutdown_grace)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level=log_level,
        access_log=settings.access_log,
        ws_max_size=settings.max_body_bytes,
        # Requests get the same grace as turns; the lifespan then drains what is left.
        timeout_graceful_shutdown=int(shutdown_grace) or 1,
        server_header=False,
    )
    return uvicorn.Server(config)


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
        InsecureBind: non-loopback ``host`` without an API key.
        SchemaMismatch: the database needs ``penguin db upgrade``, or a newer Penguin made it.
    """
    settings = settings or Settings()
    server = build_server(host, port, settings=settings, shutdown_grace=shutdown_grace, log_level=log_level)
    # A database this Penguin cannot open is refused here, as one line, not inside uvicorn's startup.
    check_schema(settings)
    freeze_startup_heap()
    server.run()


def freeze_startup_heap() -> None:
    """Keep what startup built (modules, classes, the app) out of the collector's full passes.

    It lives as long as the process, yet every full collection walked it again: one took ~50 ms
    under load, a stall of every request in flight.
    """
    gc.collect()
    gc.freeze()


__all__ = ["InsecureBind", "build_server", "check_bind", "freeze_startup_heap", "is_loopback", "serve"]
