"""Tool-selection accuracy of the embedded local model.

Runs every case of ``data/tool_selection.jsonl`` (a conversation, the tools offered, and the tool
the model should call next, or ``null`` when the right move is a plain answer) through
``LocalModel`` and prints per-case results, the accuracy, and the decode speed.

    PYTHONPATH=src python benchmarks/local_tool_selection.py [--model default] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from penguin.config import Settings
from penguin.models.base import ModelRequest, ToolSchema
from penguin.models.local import LocalModel

DATA = Path(__file__).parent / "data" / "tool_selection.jsonl"


def _params(**properties: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": text} for name, text in properties.items()},
        "required": list(properties),
    }


TOOLS: dict[str, ToolSchema] = {
    tool.name: tool
    for tool in (
        ToolSchema(
            name="read_file",
            description="Read a text file from the workspace and return its contents.",
            parameters=_params(path="Path of the file, relative to the workspace root."),
        ),
        ToolSchema(
            name="write_file",
            description="Create or overwrite a file in the workspace with the given content.",
            parameters=_params(path="Path of the file to write.", content="The full new content of the file."),
        ),
        ToolSchema(
            name="list_dir",
            description="List the files and directories in a workspace directory.",
            parameters=_params(path="Directory path, relative to the workspace root ('.' for the root)."),
        ),
        ToolSchema(
            name="search_files",
            description="Search the contents of the workspace files for a text pattern (like grep).",
            parameters=_params(pattern="Text or regular expression to search for."),
        ),
        ToolSchema(
            name="run_shell",
            description="Run a shell command in the workspace and return its output.",
            parameters=_params(command="The command line to run."),
        ),
        ToolSchema(
            name="memory_search",
            description="Search the shared long-term memory for notes, decisions and facts stored earlier.",
            parameters=_params(query="What to look for."),
        ),
        ToolSchema(
            name="send_message",
            description="Send a message to another agent or a user.",
            parameters=_params(recipient="Agent id or user name.", content="The message text."),
        ),
        ToolSchema(
            name="delegate",
            description="Delegate a task to another agent, which works on it and reports back.",
            parameters=_params(agent_id="Id of the agent to delegate to.", task="What the agent should do."),
        ),
    )
}

SYSTEM = "You are Penguin, a helpful software engineering agent working in the user's project workspace."


async def run(model_name: str, data_dir: Path, cases: list[dict[str, Any]]) -> int:
    model = LocalModel(model_name, Settings(data_dir=data_dir))
    started = time.perf_counter()
    await model.load()
    print(f"loaded {model.name} in {time.perf_counter() - started:.2f}s")
    correct = 0
    output_tokens = 0
    decode_seconds = 0.0
    for case in cases:
        request = ModelRequest(
            messages=[{"role": "system", "content": SYSTEM}, *case["messages"]],
            tools=[TOOLS[name] for name in case["tools"]],
            agent_id="bench",
        )
        began = time.perf_counter()
        response = await model.complete(request)
        elapsed = time.perf_counter() - began
        decode_seconds += elapsed
        output_tokens += response.usage.output_tokens
        got = response.tool_calls[0].name if response.tool_calls else None
        ok = got == case["expected"]
        correct += ok
        detail = response.tool_calls[0].arguments if response.tool_calls else repr(response.text[:60])
        print(
            f"{'PASS' if ok else 'FAIL'} {case['id']:<18} expected={case['expected']!s:<14} got={got!s:<14} "
            f"{elapsed:5.2f}s {detail}"
        )
    await model.aclose()
    print(f"\naccuracy: {correct}/{len(cases)} = {correct / len(cases):.1%}")
    print(
        f"completion tokens: {output_tokens} in {decode_seconds:.1f}s of calls "
        f"(includes prefill): {output_tokens / decode_seconds:.1f} tok/s"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default' (bundled) or a GGUF path")
    parser.add_argument("--data-dir", type=Path, default=Settings().data_dir, help="where models/ is kept")
    parser.add_argument("--data", type=Path, default=DATA, help="cases, one JSON object per line")
    args = parser.parse_args()
    cases = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    return asyncio.run(run(args.model, args.data_dir, cases))


if __name__ == "__main__":
    sys.exit(main())
