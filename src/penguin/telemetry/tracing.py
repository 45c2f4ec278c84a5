"""OpenTelemetry traces: a server span per HTTP request, then turn → model call → tool call.

Off unless the standard variables ask for it: ``OTEL_TRACES_EXPORTER`` = ``console`` (one JSON
object per span on stderr) and/or
``otlp`` (comma-separated; ``none`` or unset is off), and not ``OTEL_SDK_DISABLED=true``. The SDK
(``pip install 'penguin-agents[otel]'``) then reads the rest of the standard variables itself:
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (default service name ``penguin``),
``OTEL_TRACES_SAMPLER``/``_ARG``, and ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``..._HEADERS``,
``..._TIMEOUT``; the protocol is ``http/protobuf`` (gRPC is refused with a clear error).

The tracer provider belongs to the core that built it (``PenguinCore.tracing``) and is shut down
with it; the global ``set_tracer_provider`` is never called, so two cores in one process, or an
application embedding Penguin with its own provider, do not fight over it. The current span
does travel in OpenTelemetry's context (a ``ContextVar``), which is how a turn's model and tool
spans find their parent across the tasks the turn starts.

Spans follow the GenAI semantic conventions: ``invoke_agent {agent_id}`` (the turn),
``chat {model}`` (each model call, with ``gen_ai.system``, ``gen_ai.request.model``,
``gen_ai.usage.input_tokens``/``output_tokens``), ``execute_tool {name}``; each carries
``penguin.agent_id``, ``penguin.conversation_id`` and ``penguin.turn_id``. An incoming W3C
``traceparent`` makes the server span (and so the turn) a child of the caller's trace.

When tracing is off, ``Tracing.enabled`` is False and callers skip every span (one attribute
check per call site): the turn path pays nothing else, and the SDK is never imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from starlette.types import Scope

from penguin.errors import ExtraNotInstalled, ValidationFailed

Attributes = Mapping[str, str | int | float | bool]
_EXPORTERS = frozenset({"console", "otlp", "none"})


def exporters_from(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The span exporters ``environ`` asks for (empty: tracing is off).

    Raises:
        ValidationFailed: an exporter Penguin does not support.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ()
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    unknown = [n for n in names if n not in _EXPORTERS]
    if unknown:
        raise ValidationFailed(
            f"OTEL_TRACES_EXPORTER={unknown[0]!r} is not supported; use console, otlp or none",
            field="OTEL_TRACES_EXPORTER",
        )
    return tuple(n for n in names if n != "none")


class Tracing:
    """The tracer of one core, or nothing (``enabled`` False).

    Build it with ``from_environment``; ``shutdown`` flushes and closes the exporters.
    """

    def __init__(self, tracer: Any = None, provider: Any = None) -> None:
        self._tracer = tracer
        self._provider = provider
        #: Whether spans are recorded; when False every method but ``shutdown`` must not be called.
        self.enabled = tracer is not None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Tracing:
        """The tracing the ``OTEL_*`` variables ask for (off when they ask for none).

        Raises:
            ValidationFailed: an unsupported exporter is named.
            ExtraNotInstalled: tracing is asked for but the ``otel`` extra is not installed.
        """
        environ = os.environ if environ is None else environ
        exporters = exporters_from(environ)
        if not exporters:
            return cls()
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
        except ImportError:
            raise ExtraNotInstalled(
                "OTEL_TRACES_EXPORTER asks for traces but OpenTelemetry is not installed: "
                "pip install 'penguin-agents[otel]', or unset OTEL_TRACES_EXPORTER"
            ) from None
        resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME") or "penguin"})
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        for name in exporters:
            if name == "console":
                # Printed as each span ends, to stderr like the logs: stdout belongs to the MCP
                # protocol under ``penguin mcp``.
                provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
            else:
                provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(environ)))
        import penguin

        return cls(provider.get_tracer("penguin", penguin.__version__), provider)

    def span(self, name: str, attributes: Attributes) -> AbstractContextManager[Any]:
        """Start ``name`` as the current span (a child of the current one) for the ``with`` block.

        An exception leaving the block is recorded on the span and sets its status to error.
        """
        return self._tracer.start_as_current_span(name, attributes=attributes)  # type: ignore[no-any-return]

    def server_span(self, scope: Scope, request_id: str) -> ServerSpan:
        """The span of one HTTP request, a child of the caller's ``traceparent`` when it sent one."""
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        parent = TraceContextTextMapPropagator().extract(carrier)
        method = str(scope.get("method", "GET"))
        span = self._tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": str(scope.get("path", "")),
                        "penguin.request_id": request_id},
        )
        return ServerSpan(span)

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()


class ServerSpan:
    """One HTTP request's span: made current for the request, named after its route when done."""

    def __init__(self, span: Any) -> None:
        self._span = span

    @contextmanager
    def activate(self) -> Iterator[None]:
        from opentelemetry import context, trace

        token = context.attach(trace.set_span_in_context(self._span))
        try:
            yield
        finally:
            context.detach(token)

    def finish(self, route: str, status: int) -> None:
        from opentelemetry.trace import Status, StatusCode

        method = self._span.attributes.get("http.request.method", "") if self._span.attributes else ""
        self._span.update_name(f"{method} {route}")
        self._span.set_attribute("http.route", route)
        self._span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self._span.set_status(Status(StatusCode.ERROR))
        self._span.end()


def _otlp_exporter(environ: Mapping[str, str]) -> Any:
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip()
    if protocol != "http/protobuf":
        # The [otel] extra ships the HTTP exporter only: gRPC would pull grpcio into every install.
        raise ValidationFailed(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use http/protobuf "
            "(collectors listen for it on port 4318)",
            field="OTEL_EXPORTER_OTLP_PROTOCOL",
        )
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ExtraNotInstalled(
            "OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: pip install 'penguin-agents[otel]'"
        ) from None
    return OTLPSpanExporter()


__all__ = ["Attributes", "ServerSpan", "Tracing", "exporters_from"]
