"""Tool schemas keep what the type hints and the docstring say, and calls are checked against them."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Literal

import orjson
from pydantic import Field

from penguin import PenguinCore
from penguin.agents.spec import AgentSpec
from penguin.tools.base import ToolContext, docstring_args, tool_from_function
from penguin.tools.registry import ToolRegistry


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


def search(
    query: str,
    limit: Annotated[int, Field(ge=1, le=10, description="How many results to return.")] = 5,
    order: Literal["newest", "oldest"] = "newest",
    colour: Colour = Colour.RED,
    exact: bool = False,
) -> str:
    """Search the notes.

    Args:
        query: Words to look for; several words must all
            appear in a note.
        limit: Overridden by the Annotated description.
        order: Which notes come first.
        colour: Only notes of this colour.

    Returns:
        The matching notes.
    """
    return f"{query}:{limit}:{order}:{colour.value}:{exact}"


def test_schema_keeps_constraints_descriptions_enums_and_literals() -> None:
    tool = tool_from_function(search)
    assert tool.description == "Search the notes."
    assert tool.parameters == {
        "type": "object",
        "additionalProperties": False,
        "required": ["query"],
        "properties": {
            "query": {"type": "string", "description": "Words to look for; several words must all appear in a note."},
            "limit": {
                "type": "integer", "minimum": 1, "maximum": 10, "default": 5,
                "description": "How many results to return.",
            },
            "order": {
                "type": "string", "enum": ["newest", "oldest"], "default": "newest",
                "description": "Which notes come first.",
            },
            "colour": {
                "type": "string", "enum": ["red", "green"], "default": "red",
                "description": "Only notes of this colour.",
            },
            "exact": {"type": "boolean", "default": False},
        },
    }


def test_docstring_args_reads_google_style_sections() -> None:
    doc = (
        "Do it.\n\nArgs:\n    a (int): First.\n    b: Second,\n        continued.\n    *args: Rest.\n\n"
        "Raises:\n    X: never."
    )
    assert docstring_args(doc) == {"a": "First.", "b": "Second, continued.", "args": "Rest."}


async def test_an_argument_outside_the_schema_goes_back_to_the_model_as_a_counted_error() -> None:
    registry = ToolRegistry()
    registry.register(search)
    spec = AgentSpec(agent_id="a1")
    ctx = ToolContext(agent_id="a1", conversation_id="c", turn_id="t")

    bad = await registry.call(spec, ctx, "c1", "search", orjson.dumps({"query": "x", "limit": 50}).decode())
    assert bad.result == (
        "error: invalid arguments for search: limit: Input should be less than or equal to 10"
    )
    assert bad.error is not None and bad.denied is None
    wrong_choice = await registry.call(spec, ctx, "c2", "search", '{"query": "x", "order": "random"}')
    assert wrong_choice.error == "invalid arguments for search: order: Input should be 'newest' or 'oldest'"

    good = await registry.call(spec, ctx, "c3", "search", '{"query": "x", "limit": 10, "colour": "green"}')
    assert (good.result, good.error) == ("x:10:newest:green:False", None)
    assert registry.policy.stats("a1")["agents"]["a1"]["tools"]["search"] == {
        "allowed": 1, "denied": 0, "errors": 2, "timeouts": 0, "denied_by_reason": {},
    }


async def test_a_turn_whose_model_breaks_the_schema_records_the_error_for_the_model(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        core.tools.register(search)
        await core.create_agent(
            "finder", model="scripted:tool",
            model_parameters={"tool": "search", "arguments": {"query": "x", "limit": 50}},
        )
        result = await core.chat("find it", agent_id="finder")
        assert result.tool_calls[0]["error"] == (
            "invalid arguments for search: limit: Input should be less than or equal to 10"
        )
        # The scripted tool model answers with the tool's result: the model saw the error.
        assert result.text.startswith("error: invalid arguments for search")
        assert core.tool_stats("finder")["totals"]["errors"] == 1
