"""Constrained tool calling for the local model: prompt, schema, history folding and parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from penguin.models._toolcall import (
    ANSWER_SCHEMA,
    FinalAnswerStream,
    ParsedReply,
    ToolChoice,
    fold_messages,
    parse_reply,
    response_schema,
    tool_prompt,
)
from penguin.models.base import ToolCall, ToolSchema

READ = ToolSchema(
    name="read_file",
    description="Read a text file.",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
SHELL = ToolSchema(
    name="run_shell",
    description="Run a shell command.",
    parameters={"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
)


def call_option(name: str, arguments: dict[str, object]) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def test_schema_offers_the_answer_first_then_each_tool_with_its_own_arguments() -> None:
    schema = response_schema(ToolChoice.from_request([READ, SHELL], None))

    assert schema == {
        "anyOf": [
            call_option(
                "final_answer",
                {
                    "type": "object",
                    "properties": {"answer": {"type": "string", "description": "The reply text."}},
                    "required": ["answer"],
                    "additionalProperties": False,
                },
            ),
            call_option("read_file", {**READ.parameters, "additionalProperties": False}),
            call_option("run_shell", {**SHELL.parameters, "additionalProperties": False}),
        ]
    }


def test_loose_schema_accepts_any_arguments_object() -> None:
    schema = response_schema(ToolChoice.from_request([READ], "required"), loose=True)

    assert schema == call_option("read_file", {"type": "object"})


@pytest.mark.parametrize(
    ("tool_choice", "names", "allow_final"),
    [
        (None, ["read_file", "run_shell"], True),
        ("auto", ["read_file", "run_shell"], True),
        ("none", [], True),
        ("required", ["read_file", "run_shell"], False),
        ({"type": "function", "function": {"name": "run_shell"}}, ["run_shell"], False),
    ],
)
def test_tool_choice(tool_choice: object, names: list[str], allow_final: bool) -> None:
    choice = ToolChoice.from_request([READ, SHELL], tool_choice)

    assert [t.name for t in choice.tools] == names
    assert choice.allow_final is allow_final


def test_prompt_lists_every_function_as_json() -> None:
    prompt = tool_prompt(ToolChoice.from_request([READ], None))

    assert json.dumps(ANSWER_SCHEMA.to_openai()) in prompt
    assert json.dumps(READ.to_openai()) in prompt
    assert prompt.index('"final_answer"') < prompt.index('"read_file"')
    assert '{"name": <function-name>, "arguments": <args-json-object>}' in prompt


def test_history_with_tool_calls_is_folded_into_plain_turns() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are Penguin."},
        {"role": "user", "content": "What's in README.md?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [ToolCall(id="c1", name="read_file", arguments='{"path": "README.md"}').to_wire()],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "# Penguin"},
    ]

    folded = fold_messages(messages, "TOOLS")

    assert folded[0] == {"role": "system", "content": "You are Penguin.\n\nTOOLS"}
    assert folded[1] == {"role": "user", "content": "What's in README.md?"}
    assert folded[2] == {"role": "assistant", "content": '{"name": "read_file", "arguments": {"path": "README.md"}}'}
    assert folded[3]["role"] == "user"
    assert folded[3]["content"].startswith("Result of read_file:\n# Penguin\n\nUse the tool result above")
    assert len(folded) == 4


def test_content_parts_and_consecutive_user_turns_are_joined() -> None:
    folded = fold_messages(
        [
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": " two"}]},
            {"role": "user", "content": "three"},
        ]
    )

    assert folded == [{"role": "user", "content": "one two\n\nthree"}]


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "read_file", "arguments": {"path": "a.txt"}}',
        'Sure:\n```json\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n```',
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n</tool_call>',
        '{"tool": "read_file", "arguments": "{\\"path\\": \\"a.txt\\"}"}',
        '{"type": "function", "function": {"name": "read_file", "arguments": {"path": "a.txt"}}}',
    ],
)
def test_tool_calls_are_parsed_from_every_shape(text: str) -> None:
    reply = parse_reply(text, [READ])

    assert reply.text == ""
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [("read_file", {"path": "a.txt"})]
    assert reply.tool_calls[0].id.startswith("call_")


@pytest.mark.parametrize(
    "text",
    ['{"name": "final_answer", "arguments": {"answer": "Hi!"}}', '```json\n{"final_answer": "Hi!"}\n```'],
)
def test_answers_are_parsed_to_text(text: str) -> None:
    assert parse_reply(text, [READ]) == ParsedReply(text="Hi!")


@pytest.mark.parametrize(
    "text", ["Just prose.", '{"name": "rm_rf", "arguments": {}}', '{"name": "read_file", "arguments": "not json"}']
)
def test_unknown_tools_and_bad_json_stay_text(text: str) -> None:
    assert parse_reply(text, [READ]) == ParsedReply(text=text)


ANSWER = 'Héllo "wor\\ld"\n😀\ttab \u00e9 end'


@pytest.mark.parametrize("ensure_ascii", [True, False])
@pytest.mark.parametrize("step", [1, 2, 3, 7])
def test_answer_text_streams_as_it_is_decoded(ensure_ascii: bool, step: int) -> None:
    raw = json.dumps({"name": "final_answer", "arguments": {"answer": ANSWER}}, ensure_ascii=ensure_ascii)
    stream = FinalAnswerStream()

    pieces = [stream.feed(raw[i : i + step]) for i in range(0, len(raw), step)]

    assert "".join(pieces) == ANSWER
    assert stream.started
    assert stream.text == ANSWER


def test_a_tool_call_streams_no_text() -> None:
    stream = FinalAnswerStream()

    assert stream.feed('{"name": "read_file", "arguments": {"path": "a"}}') == ""
    assert not stream.started


def test_a_truncated_answer_keeps_what_was_decoded() -> None:
    stream = FinalAnswerStream()

    stream.feed('{"name": "final_answer", "arguments": {"answer": "cut off here\\u00')

    assert stream.text == "cut off here"
