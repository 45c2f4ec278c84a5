"""Tool calling for small local models: a prompt, a constraining JSON schema, and a parser.

A 0.5B model asked for OpenAI-style tool calls writes them as fenced JSON in its text, so the
``tool_calls`` field stays empty. Instead the local model is asked for exactly one JSON object,
``{"tool": <name>, "arguments": {...}}`` or ``{"final_answer": <text>}``, and llama.cpp constrains
decoding to that schema, so the output always parses. The parser also accepts the shapes a model
writes without constraints (fenced ```json blocks, bare objects, Qwen's ``<tool_call>`` tags) for
the fallback path used when a tool's schema cannot be compiled to a grammar.

The conversation is folded into plain user/assistant text on the way in: earlier tool calls become
the same JSON the model is asked to produce, and tool results become user turns. Every chat
template accepts that, whatever it does with ``tool`` roles.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from penguin.models.base import ToolCall, ToolSchema, WireMessage

FINAL_KEY = "final_answer"

_AFTER_TOOL_HINT = (
    "Use the tool result above to answer my request with final_answer. "
    "Call another tool only if the result is not enough."
)
_FENCE = re.compile(r"```(?:json|tool_call)?\s*\n?(.*?)```", re.DOTALL)
_TOOL_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FINAL_PREFIX = re.compile(r'^\s*\{\s*"final_answer"\s*:\s*"')


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolChoice:
    """Which answers the schema allows, from the OpenAI-style ``tool_choice`` parameter."""

    #: Tools the model may call (all offered tools unless ``tool_choice`` names one).
    tools: tuple[ToolSchema, ...]
    #: Whether a plain final answer is allowed (``False`` for ``tool_choice="required"``).
    allow_final: bool = True

    @classmethod
    def from_request(cls, tools: Sequence[ToolSchema], choice: object) -> ToolChoice:
        if choice == "none":
            return cls(tools=())
        if choice == "required":
            return cls(tools=tuple(tools), allow_final=not tools)
        if isinstance(choice, Mapping):
            function = choice.get("function")
            name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
            picked = tuple(t for t in tools if t.name == name)
            if picked:
                return cls(tools=picked, allow_final=False)
        return cls(tools=tuple(tools))


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _type_label(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        return "|".join(str(k) for k in kind)
    if "enum" in schema:
        return "|".join(json.dumps(v) for v in schema["enum"])
    return str(kind or "any")


def _signature(tool: ToolSchema) -> str:
    properties = tool.parameters.get("properties") or {}
    required = set(tool.parameters.get("required") or ())
    params = ", ".join(
        f"{name}{'' if name in required else '?'}: {_type_label(spec if isinstance(spec, Mapping) else {})}"
        for name, spec in properties.items()
    )
    return f"{tool.name}({params})"


def tool_prompt(choice: ToolChoice) -> str:
    """The system-prompt section that lists the tools and the reply format."""
    lines = ["You can use these tools:"]
    lines += [f"- {_signature(t)}: {t.description.strip().splitlines()[0] if t.description else ''}"
              for t in choice.tools]
    lines.append("")
    lines.append("Reply with exactly one JSON object and nothing else:")
    lines.append('- to call a tool: {"tool": "<tool name>", "arguments": {<arguments>}}')
    if choice.allow_final:
        lines.append('- to answer directly: {"final_answer": "<your answer>"}')
        lines.append(
            "Call a tool only when the request needs an action or information that a tool provides; "
            "otherwise answer directly."
        )
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
    """The JSON schema of one reply: a call to one offered tool, or a final answer.

    Args:
        choice: the tools the reply may call and whether a final answer is allowed.
        loose: accept any arguments object, for tool schemas the grammar compiler rejects.
    """
    options: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {"tool": {"const": tool.name}, "arguments": _arguments_schema(tool, loose=loose)},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        for tool in choice.tools
    ]
    if choice.allow_final:
        options.append(
            {
                "type": "object",
                "properties": {FINAL_KEY: {"type": "string"}},
                "required": [FINAL_KEY],
                "additionalProperties": False,
            }
        )
    return options[0] if len(options) == 1 else {"anyOf": options}


def content_text(content: object) -> str:
    """The text of a message ``content`` (a string, ``None`` or a list of OpenAI parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part) for part in content
        )
    return json.dumps(content)


def _call_json(name: str, arguments: object) -> str:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            pass
    return json.dumps({"tool": name, "arguments": arguments}, ensure_ascii=False)


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
                parts.append(_call_json(name, function.get("arguments", "{}")))
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
            try:
                found.append(decoder.raw_decode(stripped[start:])[0])
            except ValueError:
                pass
    return found


def parse_reply(text: str, tools: Sequence[ToolSchema]) -> ParsedReply:
    """Read a reply written in the constrained format, or the looser shapes seen without constraints.

    Unknown tool names and unparseable JSON are never turned into calls: the text is returned as is.
    """
    names = frozenset(t.name for t in tools)
    for candidate in _json_candidates(text):
        if isinstance(candidate, Mapping) and isinstance(candidate.get(FINAL_KEY), str):
            return ParsedReply(text=candidate[FINAL_KEY])
        items = candidate if isinstance(candidate, list) else [candidate]
        calls = [c for c in (_as_call(item, names) for item in items) if c is not None]
        if calls:
            return ParsedReply(text="", tool_calls=tuple(calls))
    return ParsedReply(text=text)


class FinalAnswerStream:
    """Turns a growing constrained reply into the text of its ``final_answer`` as it is decoded.

    Fed raw JSON fragments, ``feed`` returns the newly decoded answer text (an empty string while
    the reply is a tool call or the fragment ends inside an escape sequence).
    """

    def __init__(self) -> None:
        self._raw = ""
        #: Index in ``_raw`` of the next answer character not yet decoded (``-1``: no answer yet).
        self._cursor = -1
        self._closed = False

    def feed(self, fragment: str) -> str:
        self._raw += fragment
        if self._cursor < 0:
            match = _FINAL_PREFIX.match(self._raw)
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
