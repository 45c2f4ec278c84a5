"""Log lines that say which request, agent, conversation and turn they are about.

Two ``ContextVar`` s carry the correlation fields: the request id (bound by the API's request
middleware for one HTTP request) and the turn (agent id, conversation id, turn id, bound by
``Engine.run_turn``). ``ContextFilter`` copies them onto every record, so any log call made while
a turn runs (a tool, a model retry, the failure line) carries them without passing them around.

A ``ContextVar`` is the one piece of ambient state here, on purpose: log correlation must reach
code that has no business taking a request id argument (a tool, a wire client), and the
variables are request-scoped, copied into every task a request starts (``asyncio`` copies the
context at ``create_task``), never shared between requests.

Two formats, chosen by ``Settings.log_format`` (``PENGUIN_LOG_FORMAT``): ``text`` (the default,
one readable line with the fields appended as ``key=value``) and ``json`` (one JSON object a line,
for log shippers). ``log_config`` is the ``logging.config.dictConfig`` document that ``penguin
serve`` hands uvicorn, so uvicorn's own lines get the same format.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar, Token
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]

#: The correlation fields, in the order the text format prints them.
FIELDS = ("request_id", "agent_id", "conversation_id", "turn_id")


TurnFields = tuple[str, str, str]
"""``(agent_id, conversation_id, turn_id)`` of the turn a log line is about (a plain tuple: it is
bound on every turn, and a tuple costs a fraction of a frozen dataclass to build)."""

_TURN_FIELDS = ("agent_id", "conversation_id", "turn_id")
_request_id: ContextVar[str | None] = ContextVar("penguin_request_id", default=None)
_turn: ContextVar[TurnFields | None] = ContextVar("penguin_turn", default=None)


def bind_request(request_id: str) -> Token[str | None]:
    """Make ``request_id`` the request of every log line in this context until ``unbind_request``."""
    return _request_id.set(request_id)


def unbind_request(token: Token[str | None]) -> None:
    _request_id.reset(token)


def current_request_id() -> str | None:
    """The request id bound in this context, if any."""
    return _request_id.get()


def bind_turn(agent_id: str, conversation_id: str, turn_id: str) -> Token[TurnFields | None]:
    """Make this the turn of every log line in this context until ``unbind_turn``."""
    return _turn.set((agent_id, conversation_id, turn_id))


def unbind_turn(token: Token[TurnFields | None]) -> None:
    _turn.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``agent_id``, ``conversation_id`` and ``turn_id`` to every record.

    Values given with ``extra=`` win over the bound ones; missing ones are ``None``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        if attrs.get("request_id") is None:
            attrs["request_id"] = _request_id.get()
        turn = _turn.get()
        for index, name in enumerate(_TURN_FIELDS):
            if attrs.get(name) is None:
                attrs[name] = turn[index] if turn is not None else None
        return True


def _context_of(record: logging.LogRecord) -> dict[str, Any]:
    return {name: value for name in FIELDS if (value := getattr(record, name, None)) is not None}


class TextFormatter(logging.Formatter):
    """``2026-12-04 16:41:42,123 WARNING penguin.engine: turn failed: ... agent_id=a1 turn_id=...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context_of(record)
        if not context:
            return line
        fields = " ".join(f"{k}={v}" for k, v in context.items())
        head, sep, tail = line.partition("\n")  # fields go on the message line, before a traceback
        return f"{head} {fields}{sep}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message``, the correlation
    fields that are set, and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context_of(record),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return orjson.dumps(out, default=str).decode()


def formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def log_config(log_format: LogFormat, level: str = "info") -> dict[str, Any]:
    """A ``dictConfig`` for Penguin's and uvicorn's loggers, in ``log_format``, to stderr.

    uvicorn's access lines keep their own message (client, request line, status) and gain the
    request id in both formats.
    """
    factory = f"{__name__}.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"
    handler = {"class": "logging.StreamHandler", "formatter": "penguin", "filters": ["context"],
               "stream": "ext://sys.stderr"}
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "formatters": {"penguin": {"()": factory}},
        "handlers": {"penguin": handler},
        "loggers": {
            "penguin": {"handlers": ["penguin"], "level": upper, "propagate": False},
            "uvicorn": {"handlers": ["penguin"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            "uvicorn.access": {"handlers": ["penguin"], "level": upper, "propagate": False},
        },
    }


__all__ = [
    "FIELDS",
    "ContextFilter",
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "TurnFields",
    "bind_request",
    "bind_turn",
    "current_request_id",
    "formatter",
    "log_config",
    "unbind_request",
    "unbind_turn",
]
