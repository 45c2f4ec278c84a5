"""Tool calling for small local models: a prompt, a constraining JSON schema, and a parser.

A 0.5B model asked for OpenAI-style tool calls writes them as fenced JSON in its text, so the
``tool_calls`` field stays empty. Instead the local model is asked for exactly one JSON object in
the shape Qwen models are trained on, ``{"name": <function>, "arguments": {...}}``, and llama.cpp
constrains decoding to a schema allowing only the offered tools (each with its own parameter
schema), so the output always parses. Answering the user is one more function, ``final_answer``,
listed first.

Measured on ``benchmarks/local_tool_selection.py`` (Qwen2.5-Coder-0.5B, 34 cases), the format
matters more than anything else: ``{"tool": ...}`` plus a separate ``{"final_answer": ...}`` object
scored 15/34, the answer as a function listed *first* with Qwen's ``<tools>`` JSON block and four
generic examples 24/34. The model favours whichever option is listed first, and with the answer
last it calls a tool for almost every greeting.

The parser also accepts the shapes a model writes without constraints (fenced ```json blocks,
bare objects, Qwen's ``<tool_call>`` tags) for the fallback used when a tool's schema cannot be
compiled to a grammar. The conversation is folded into plain user/assistant text on the way in:
earlier tool calls become the same JSON the model is asked to produce, and tool results become
user turns, which every chat template accepts.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from penguin.models.base import ToolCall, ToolSchema, WireMessage

ANSWER_TOOL = "final_answer"
ANSWER_ARG = "answer"

_AFTER_TOOL_HINT = (
    f"Use the tool result above to answer my request with {ANSWER_TOOL}. "
    "Call another function only if the result is not enough."
)
# Generic examples with made-up tools: they teach the format and when to answer directly
# without hinting at any real tool.
_EXAMPLES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("What's the weather like in Paris right now?", "get_weather", {"city": "Paris"}),
    (
        "Email bob@example.com that the meeting moved to 3pm.",
        "send_email",
        {"to": "bob@example.com", "subject": "Meeting moved", "body": "The meeting moved to 3pm."},
    ),
    (
        "What is a haiku?",
        ANSWER_TOOL,
        {ANSWER_ARG: "A haiku is a short Japanese poem of three lines with 5, 7 and 5 syllables."},
    ),
    ("Result of get_weather: 18°C, light rain.", ANSWER_TOOL, {ANSWER_ARG: "It is 18°C with light rain in Paris."}),
)
_FENCE = re.compile(r"```(?:json|tool_call)?\s*\n?(.*?)```", re.DOTALL)
_TOOL_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_ANSWER_PREFIX = re.compile(r'^\s*\{\s*"name"\s*:\s*"final_answer"\s*,\s*"arguments"\s*:\s*\{\s*"answer"\s*:\s*"')

ANSWER_SCHEMA = ToolSchema(
    name=ANSWER_TOOL,
    description=(
        "Reply to the user with a message. Use this to greet, to answer questions from your own "
        "knowledge, to explain or write code in the reply, and to report what a tool returned."
    ),
    parameters={
        "type": "object",
        "properties": {ANSWER_ARG: {"type": "string", "description": "The reply text."}},
        "required": [ANSWER_ARG],
    },
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolChoice:
    """Which answers the schema allows, from the OpenAI-style ``tool_choice`` parameter."""

    #: Tools the model may call (all offered tools unless ``tool_choice`` names one).
    tools: tuple[ToolSchema, ...]
    #: Whether a plain final answer is allowed (``False`` for ``tool_choice="required"``).
    allow_final: bool = True

    @classmethod
    def from_request(cls, tools: Sequence[ToolSchema], choice: object) -> ToolChoice:
        # An offered tool that shadows the answer function cannot be told apart from an answer.
        usable = tuple(t for t in tools if t.name != ANSWER_TOOL)
        if choice == "none":
            return cls(tools=())
        if choice == "required":
            return cls(tools=usable, allow_final=not usable)
        if isinstance(choice, Mapping):
            function = choice.get("function")
            name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
            picked = tuple(t for t in usable if t.name == name)
            if picked:
                return cls(tools=picked, allow_final=False)
        return cls(tools=usable)

    @property
    def functions(self) -> tuple[ToolSchema, ...]:
        """What the model chooses from: the answer function first, then the tools."""
        return ((ANSWER_SCHEMA,) if self.allow_final else ()) + self.tools


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def call_json(name: str, arguments: object) -> str:
    """One reply in the constrained format (also used to replay earlier calls to the model)."""
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):
            arguments = json.loads(arguments) if arguments.strip() else {}
    return json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)


def tool_prompt(choice: ToolChoice) -> str:
    """The system-prompt section that lists the functions and the reply format."""
    lines = [
        "# Tools",
        "",
        "You are provided with function signatures within <tools></tools> XML tags:",
        "<tools>",
        *(json.dumps(f.to_openai(), ensure_ascii=False) for f in choice.functions),
        "</tools>",
        "",
        'Reply with exactly one JSON object: {"name": <function-name>, "arguments": <args-json-object>}.',
    ]
    if choice.allow_final:
        lines += ["", "Examples with other tools (get_weather(city), send_email(to, subject, body)):"]
        for user, name, arguments in _EXAMPLES:
            lines += [f"User: {user}", f"Reply: {call_json(name, arguments)}"]
    return "\n".join(lines)


def _arguments_schema(tool: ToolSchema, *, loose: bool) -> dict[str, Any]:
    if loose:
        return {"type": "object"}
    schema = dict(tool.parameters)
    schema.setdefault("type", "object")
    if "properties" in schema:
        schema.setdefault("additionalProperties", False)
    return schema


def response_schema(choice: ToolChoice, *, loose: bool = False) -> dict[str, Any]:
    """The JSON schema of one reply: a call to one of ``choice.functions``.

    Args:
        choice: the tools the reply may call and whether a final answer is allowed.
        loose: accept any arguments object, for tool schemas the grammar compiler rejects.
    """
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"const": f.name},
                "arguments": _arguments_schema(f, loose=loose and f is not ANSWER_SCHEMA),
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for f in choice.functions
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def content_text(content: object) -> str:
    """The text of a message ``content`` (a string, ``None`` or a list of OpenAI parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) if isinstance(part, Mapping) else str(part) for part in content)
    return json.dumps(content)


def fold_messages(messages: Sequence[WireMessage], system_extra: str = "") -> list[dict[str, str]]:
    """Convert OpenAI-shaped messages into system/user/assistant text any chat template accepts.

    Args:
        messages: the conversation, possibly with assistant ``tool_calls`` and ``tool`` results.
        system_extra: text appended to the system prompt (the tool section), if any.
    """
    system: list[str] = []
    turns: list[dict[str, str]] = []
    call_names: dict[str, str] = {}
    last_was_tool = False
    for message in messages:
        role = message.get("role")
        text = content_text(message.get("content"))
        last_was_tool = role == "tool"
        if role in ("system", "developer"):
            if text:
                system.append(text)
            continue
        if role == "assistant":
            parts = [text] if text else []
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                name = str(function.get("name", ""))
                call_names[str(call.get("id", ""))] = name
                parts.append(call_json(name, function.get("arguments", "{}")))
            turns.append({"role": "assistant", "content": "\n".join(parts)})
            continue
        if role == "tool":
            name = message.get("name") or call_names.get(str(message.get("tool_call_id", "")), "the tool")
            text = f"Result of {name}:\n{text}"
        if turns and turns[-1]["role"] == "user":
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": "user", "content": text})
    if last_was_tool and system_extra:
        turns[-1]["content"] += "\n\n" + _AFTER_TOOL_HINT
    if system_extra:
        system.append(system_extra)
    head = [{"role": "system", "content": "\n\n".join(system)}] if system else []
    return head + turns


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedReply:
    """A model reply split into answer text and tool calls."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()


def _as_call(obj: object, names: frozenset[str]) -> ToolCall | None:
    if not isinstance(obj, Mapping):
        return None
    function = obj.get("function")
    if isinstance(function, Mapping):
        obj = function
    name = obj.get("tool", obj.get("name"))
    if not isinstance(name, str) or name not in names:
        return None
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, Mapping):
        return None
    return ToolCall(id=new_call_id(), name=name, arguments=json.dumps(arguments, ensure_ascii=False))


def _as_answer(obj: object) -> str | None:
    if not isinstance(obj, Mapping):
        return None
    if isinstance(obj.get(ANSWER_TOOL), str):  # {"final_answer": "..."}, as models like to write it
        return str(obj[ANSWER_TOOL])
    arguments = obj.get("arguments")
    if obj.get("name") == ANSWER_TOOL and isinstance(arguments, Mapping):
        return str(arguments.get(ANSWER_ARG, ""))
    return None


def _json_candidates(text: str) -> list[object]:
    found: list[object] = []
    snippets = [text, *_FENCE.findall(text), *_TOOL_TAG.findall(text)]
    decoder = json.JSONDecoder()
    for snippet in snippets:
        stripped = snippet.strip()
        try:
            found.append(json.loads(stripped))
            continue
        except ValueError:
            pass
        start = stripped.find("{")
        if start >= 0:
            with contextlib.suppress(ValueError):
                found.append(decoder.raw_decode(stripped[start:])[0])
    return found


def parse_reply(text: str, tools: Sequence[ToolSchema]) -> ParsedReply:
    """Read a reply written in the constrained format, or the looser shapes seen without constraints.

    Unknown tool names and unparseable JSON are never turned into calls: the text is returned as is.
    """
    names = frozenset(t.name for t in tools)
    for candidate in _json_candidates(text):
        answer = _as_answer(candidate)
        if answer is not None:
            return ParsedReply(text=answer)
        items = candidate if isinstance(candidate, list) else [candidate]
        calls = [c for c in (_as_call(item, names) for item in items) if c is not None]
        if calls:
            return ParsedReply(text="", tool_calls=tuple(calls))
    return ParsedReply(text=text)


def _call_key(name: str, arguments: str) -> tuple[str, str]:
    try:
        return name, json.dumps(json.loads(arguments or "{}"), sort_keys=True)
    except ValueError:
        return name, arguments


def repeats_earlier_call(reply: ParsedReply, messages: Sequence[WireMessage]) -> bool:
    """Whether every call in ``reply`` was already made, with the same arguments, in ``messages``."""
    if not reply.tool_calls:
        return False
    earlier = {
        _call_key(str(fn.get("name", "")), str(fn.get("arguments", "")))
        for message in messages
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or ()
        if isinstance(fn := call.get("function"), Mapping)
    }
    return all(_call_key(c.name, c.arguments) in earlier for c in reply.tool_calls)


class FinalAnswerStream:
    """Turns a growing constrained reply into the text of its ``final_answer`` call as it is decoded.

    Fed raw JSON fragments, ``feed`` returns the newly decoded answer text (an empty string while
    the reply is a tool call or the fragment ends inside an escape sequence).
    """

    def __init__(self) -> None:
        self._raw = ""
        #: Index in ``_raw`` of the next answer character not yet decoded (``-1``: no answer yet).
        self._cursor = -1
        self._closed = False
        #: The answer text decoded so far.
        self.text = ""

    @property
    def started(self) -> bool:
        """Whether the reply is a final answer (known once its key has been decoded)."""
        return self._cursor >= 0

    def feed(self, fragment: str) -> str:
        self._raw += fragment
        if self._cursor < 0:
            match = _ANSWER_PREFIX.match(self._raw)
            if match is None:
                return ""
            self._cursor = match.end()
        if self._closed:
            return ""
        safe, self._closed = _complete_prefix(self._raw[self._cursor :])
        try:
            decoded: str = json.loads(f'"{safe}"')
        except ValueError:
            return ""
        self._cursor += len(safe)
        self.text += decoded
        return decoded


def _complete_prefix(body: str) -> tuple[str, bool]:
    """The part of a JSON string body that ends on a whole character, and whether the string closed."""
    index = 0
    while index < len(body):
        char = body[index]
        if char == '"':
            return body[:index], True
        if char == "\\":
            width = 2
            if body[index + 1 : index + 2] == "u":
                # A high surrogate is only decodable together with the low half that follows it.
                width = 12 if body[index + 2 : index + 4].lower() in ("d8", "d9", "da", "db") else 6
            if index + width > len(body):
                return body[:index], False
            index += width
        else:
            index += 1
    return body, False
