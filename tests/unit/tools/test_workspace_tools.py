"""The built-in workspace tools, called the way the engine calls them: through ``ToolRegistry.call``."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from penguin import PenguinCore, ScriptedModel, script_reply
from penguin.agents.spec import AgentSpec, ToolPolicy
from penguin.models.base import ModelRequest
from penguin.tools.base import ToolContext, ToolOutcome
from penguin.tools.registry import ToolRegistry
from penguin.tools.sandbox import Workspace
from penguin.tools.shell import ShellLimits
from penguin.tools.workspace import register_builtin_tools

FILE_TOOLS = ["edit_file", "list_dir", "read_file", "search_files", "write_file"]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws", max_read_bytes=4096, max_write_bytes=4096)


@pytest.fixture
def registry(ws: Workspace) -> ToolRegistry:
    reg = ToolRegistry()
    register_builtin_tools(reg, ws, shell=ShellLimits(timeout=5.0, max_output_bytes=2048))
    return reg


AGENT = AgentSpec(agent_id="worker")
SHELL_AGENT = AgentSpec(agent_id="ops", tool_policy=ToolPolicy(shell=True))


async def call(registry: ToolRegistry, name: str, spec: AgentSpec = AGENT, **arguments: object) -> ToolOutcome:
    ctx = ToolContext(agent_id=spec.agent_id, conversation_id="conv", turn_id="turn", policy=spec.tool_policy)
    return await registry.call(spec, ctx, "call_1", name, orjson.dumps(arguments).decode())


def ok(outcome: ToolOutcome) -> str:
    assert outcome.error is None, outcome.error
    return outcome.result


# -- read / write / edit -------------------------------------------------------------------------

async def test_write_then_read(registry: ToolRegistry, ws: Workspace) -> None:
    assert ok(await call(registry, "write_file", path="notes/a.txt", content="one\ntwo\nthree\n")) == (
        "wrote 14 bytes to notes/a.txt"
    )
    assert ok(await call(registry, "read_file", path="notes/a.txt")) == "one\ntwo\nthree\n"
    assert ok(await call(registry, "read_file", path="notes/a.txt", start_line=2, max_lines=1)) == "two\n"
    assert ok(await call(registry, "read_file", path="notes/a.txt", start_line=3)) == "three\n"
    assert (ws.root / "notes" / "a.txt").read_text() == "one\ntwo\nthree\n"


async def test_read_failures(registry: ToolRegistry, ws: Workspace) -> None:
    (ws.root / "big.txt").write_text("x" * 5000)
    cases = {
        "missing.txt": "no such file: 'missing.txt'",
        "big.txt": "larger than the 4096-byte read limit",
        "../etc/passwd": "'..' is refused",
    }
    for path, message in cases.items():
        outcome = await call(registry, "read_file", path=path)
        assert outcome.error is not None and message in outcome.error
        assert outcome.result == f"error: {outcome.error}"
    bad_line = await call(registry, "read_file", path="big.txt", start_line=0)
    assert bad_line.error == "start_line must be 1 or more"
    no_path = await call(registry, "read_file")
    assert no_path.error is not None and "invalid arguments for read_file: path: Field required" in no_path.error


async def test_write_failures(registry: ToolRegistry) -> None:
    too_big = await call(registry, "write_file", path="x.txt", content="y" * 5000)
    assert too_big.error == "content is 5000 bytes, over the 4096-byte write limit"
    absolute = await call(registry, "write_file", path="/tmp/x.txt", content="y")
    assert absolute.denied == "sandbox" and "absolute paths are refused" in (absolute.error or "")


async def test_edit_file_exact_replace(registry: ToolRegistry, ws: Workspace) -> None:
    (ws.root / "code.py").write_text("a = 1\nb = 2\na = 1\n")
    unique = await call(registry, "edit_file", path="code.py", old_text="b = 2", new_text="b = 3")
    assert ok(unique) == "replaced 1 occurrence(s) in code.py"
    assert (ws.root / "code.py").read_text() == "a = 1\nb = 3\na = 1\n"

    ambiguous = await call(registry, "edit_file", path="code.py", old_text="a = 1", new_text="a = 9")
    assert ambiguous.error == (
        "old_text appears 2 times in 'code.py'; add surrounding lines to make it unique, "
        "or set replace_all to replace every occurrence"
    )
    assert (ws.root / "code.py").read_text() == "a = 1\nb = 3\na = 1\n"  # untouched

    every = await call(registry, "edit_file", path="code.py", old_text="a = 1", new_text="a = 9", replace_all=True)
    assert ok(every) == "replaced 2 occurrence(s) in code.py"
    assert (ws.root / "code.py").read_text() == "a = 9\nb = 3\na = 9\n"


async def test_edit_file_failures(registry: ToolRegistry, ws: Workspace) -> None:
    (ws.root / "t.txt").write_text("hello")
    (ws.root / "bin.dat").write_bytes(b"\xff\xfe\x00hello")
    cases = [
        ({"old_text": "absent", "new_text": "x"},
         "old_text was not found in 't.txt'; read the file and copy the text exactly"),
        ({"old_text": "", "new_text": "x"},
         "old_text must not be empty; use write_file to create or replace a whole file"),
        ({"old_text": "hello", "new_text": "hello"}, "old_text and new_text are the same; nothing to change"),
    ]
    for args, message in cases:
        assert (await call(registry, "edit_file", path="t.txt", **args)).error == message
    binary = await call(registry, "edit_file", path="bin.dat", old_text="hello", new_text="bye")
    assert binary.error == "'bin.dat' is not UTF-8 text; edit_file only edits text files"
    missing = await call(registry, "edit_file", path="nope.txt", old_text="a", new_text="b")
    assert missing.error == "no such file: 'nope.txt'"


async def test_concurrent_edits_of_one_file_lose_nothing(registry: ToolRegistry, ws: Workspace) -> None:
    lines = [f"line {i} = old" for i in range(40)]
    (ws.root / "shared.txt").write_text("\n".join(lines))
    outcomes = await asyncio.gather(*(
        call(registry, "edit_file", path="shared.txt", old_text=f"line {i} = old", new_text=f"line {i} = new")
        for i in range(40)
    ))
    assert [o.error for o in outcomes] == [None] * 40
    assert (ws.root / "shared.txt").read_text() == "\n".join(f"line {i} = new" for i in range(40))


# -- list / search ---------------------------------------------------------------------------------

async def test_list_dir(registry: ToolRegistry, ws: Workspace) -> None:
    (ws.root / "src").mkdir()
    (ws.root / "src" / "m.py").write_text("x = 1\n")
    (ws.root / "README").write_text("hi")
    (ws.root / "link").symlink_to("README")
    assert ok(await call(registry, "list_dir")) == "README  2 bytes\nlink  (symlink)\nsrc/"
    assert ok(await call(registry, "list_dir", path="src")) == "m.py  6 bytes"
    (ws.root / "empty").mkdir()
    assert ok(await call(registry, "list_dir", path="empty")) == "(empty directory)"
    assert (await call(registry, "list_dir", path="nope")).error == "no such directory: 'nope'"
    assert (await call(registry, "list_dir", path="README")).error == "'README' is not a directory"


async def test_search_files(registry: ToolRegistry, ws: Workspace) -> None:
    (ws.root / "src" / "pkg").mkdir(parents=True)
    (ws.root / "src" / "pkg" / "a.py").write_text("def alpha():\n    return 1\n")
    (ws.root / "src" / "b.txt").write_text("ALPHA in text\n")
    (ws.root / ".git").mkdir()
    (ws.root / ".git" / "config").write_text("alpha\n")
    (ws.root / "blob.bin").write_bytes(b"alpha\x00\x01")
    assert ok(await call(registry, "search_files", pattern="alpha")) == "src/pkg/a.py:1: def alpha():"
    assert ok(await call(registry, "search_files", pattern="alpha", ignore_case=True)) == (
        "src/b.txt:1: ALPHA in text\nsrc/pkg/a.py:1: def alpha():"
    )
    assert ok(await call(registry, "search_files", pattern=r"return \d", path="src", glob="*.py")) == (
        "src/pkg/a.py:2:     return 1"
    )
    assert ok(await call(registry, "search_files", pattern="zeta")) == "no matches"
    bad = await call(registry, "search_files", pattern="(unclosed")
    assert bad.error is not None and bad.error.startswith("invalid regular expression '(unclosed'")


async def test_search_results_are_capped(registry: ToolRegistry, ws: Workspace) -> None:
    (ws.root / "many.txt").write_text("hit\n" * 50)
    text = ok(await call(registry, "search_files", pattern="hit", max_results=5))
    assert text.splitlines() == [f"many.txt:{i}: hit" for i in range(1, 6)] + [
        "[stopped at 5 matches; narrow the pattern, path or glob]"
    ]


async def test_file_tools_run_in_worker_threads(registry: ToolRegistry) -> None:
    # search_files is async only to stop its worker thread when the call is abandoned.
    blocking = [n for n in FILE_TOOLS if (t := registry.get(n)) is not None and t.blocking]
    assert blocking == ["edit_file", "list_dir", "read_file", "write_file"]
    for name in ("search_files", "run_shell"):
        tool = registry.get(name)
        assert tool is not None and not tool.blocking


# -- run_shell -------------------------------------------------------------------------------------

async def test_shell_is_hidden_unless_the_policy_enables_it(registry: ToolRegistry) -> None:
    assert [s.name for s in registry.schemas_for(AGENT)] == FILE_TOOLS
    assert [s.name for s in registry.schemas_for(SHELL_AGENT)] == sorted([*FILE_TOOLS, "run_shell"])
    refused = await call(registry, "run_shell", command="echo hi")
    assert refused.denied == "not_enabled"
    assert refused.error == "tool 'run_shell' is not enabled for agent 'worker'"


async def test_shell_runs_in_the_workspace_with_a_clean_environment(
    registry: ToolRegistry, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PENGUIN_TEST_SECRET", "s3cret")
    out = ok(await call(registry, "run_shell", SHELL_AGENT,
                        command='pwd; echo "[$PENGUIN_TEST_SECRET]"; echo err >&2; exit 3'))
    assert out == f"exit code: 3\n{ws.root}\n[]\nerr\n"


async def test_shell_output_is_capped(registry: ToolRegistry) -> None:
    out = ok(await call(registry, "run_shell", SHELL_AGENT, command="head -c 100000 /dev/zero | tr '\\0' a"))
    assert out == "exit code: 0\n" + "a" * 2048 + "\n[output truncated at 2048 bytes]"


def running(marker: str) -> list[int]:
    """Host pids of processes whose command line contains ``marker`` (sandboxed pids are namespaced)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
                with open(f"/proc/{entry}/stat") as fh:
                    zombie = fh.read().rsplit(") ", 1)[1][0] == "Z"
            except OSError:
                continue
            if marker in cmdline and not zombie and int(entry) != os.getpid():
                found.append(int(entry))
    return found


async def test_shell_timeout_kills_the_command_and_its_children(registry: ToolRegistry) -> None:
    started = time.perf_counter()
    outcome = await call(registry, "run_shell", SHELL_AGENT,
                         command="sleep 30.0417 & echo started; wait", timeout=0.5)
    assert time.perf_counter() - started < 3
    assert outcome.error == (
        "command timed out after 0.5s and was killed; output so far:\nexit code: None\nstarted\n"
    )
    assert running("sleep 30.0417") == []


async def test_policy_timeout_also_kills_the_shell(ws: Workspace, registry: ToolRegistry) -> None:
    spec = AgentSpec(agent_id="ops", tool_policy=ToolPolicy(shell=True, timeout=0.3))
    outcome = await call(registry, "run_shell", spec, command="touch started; sleep 30.0418")
    assert outcome.error == "tool 'run_shell' timed out after 0.3s (tool_policy.timeout); the call was abandoned"
    assert (ws.root / "started").exists() and running("sleep 30.0418") == []


async def test_shell_argument_errors(registry: ToolRegistry) -> None:
    assert (await call(registry, "run_shell", SHELL_AGENT, command="  ")).error == "command must not be empty"
    assert (await call(registry, "run_shell", SHELL_AGENT, command="true", timeout=-1)).error == (
        "timeout must be a positive number of seconds"
    )


async def test_shell_never_blocks_the_event_loop(registry: ToolRegistry) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        ok(await call(registry, "run_shell", SHELL_AGENT, command="sleep 0.4"))
    finally:
        task.cancel()
    assert ticks >= 20


# -- through a real chat turn ----------------------------------------------------------------------

async def test_core_registers_the_builtins_in_its_workspace(tmp_path: Path) -> None:
    def script(req: ModelRequest) -> object:
        last = req.messages[-1]
        if last["role"] == "tool":
            return f"tool said: {last['content']}"
        return script_reply(write_file={"path": "out/hello.txt", "content": "hi from the agent"})

    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        assert core.workspace.root == (tmp_path / "workspace").resolve()
        core.models.register("scripted:writer", ScriptedModel(script))
        result = await core.chat("write it", agent_id="writer", model="scripted:writer")
        assert result.text == "tool said: wrote 17 bytes to out/hello.txt"
        assert (tmp_path / "workspace" / "out" / "hello.txt").read_text() == "hi from the agent"
        tool_msg = [m for m in await core.history("writer") if m.role == "tool"][0]
        assert tool_msg.metadata is not None
        assert tool_msg.metadata["error"] is None and tool_msg.metadata["denied"] is None
        assert tool_msg.metadata["duration_ms"] > 0 and tool_msg.metadata["started_at"] > 0


async def test_workspace_dir_setting(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path / "data", model="scripted:echo", workspace_dir=tmp_path / "w") as core:
        assert core.workspace.root == (tmp_path / "w").resolve() and core.workspace.root.is_dir()


async def test_list_dir_is_capped(registry: ToolRegistry, ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from penguin.tools import workspace as workspace_module

    monkeypatch.setattr(workspace_module, "MAX_DIR_ENTRIES", 3)
    for i in range(5):
        (ws.root / f"f{i}").write_text("")
    assert ok(await call(registry, "list_dir")).splitlines() == [
        "f0  0 bytes", "f1  0 bytes", "f2  0 bytes", "[more than 3 entries; only the first 3 are shown]"
    ]


# -- search_files under hostile patterns ------------------------------------------------------------

async def test_a_catastrophic_pattern_searches_in_linear_time(registry: ToolRegistry, ws: Workspace) -> None:
    (ws.root / "input.txt").write_text(("a" * 30 + "b\n") * 100)
    started = time.perf_counter()
    assert ok(await call(registry, "search_files", pattern="(a+)+$")) == "no matches"
    assert time.perf_counter() - started < 1.0  # Python's re: minutes per line
    lookahead = await call(registry, "search_files", pattern="a(?=b)")
    assert lookahead.error is not None and "invalid perl operator: (?=" in lookahead.error
    assert "RE2 syntax" in lookahead.error


async def test_search_stops_at_its_budget(
    registry: ToolRegistry, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from penguin.tools import workspace as workspace_module

    monkeypatch.setattr(workspace_module, "SEARCH_BUDGET_FILES", 2)
    for i in range(5):
        (ws.root / f"f{i}.txt").write_text("miss\n")
    assert ok(await call(registry, "search_files", pattern="hit")) == (
        "[search stopped at its budget (10s, 2 files, 268435456 bytes) after 2 files and 10 bytes; "
        "narrow the path or glob]"
    )


class EndlessWorkspace(Workspace):
    """A workspace with files without end, each read slowly; says when its walk was abandoned."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.walk_closed = threading.Event()

    def iter_files(  # type: ignore[override]
        self, path: str = ".", *, skip_dirs: frozenset[str] = frozenset()
    ) -> Iterator[tuple[str, bytes]]:
        try:
            for n in itertools.count():
                time.sleep(0.005)
                yield f"f{n}.txt", b"nothing to see\n"
        finally:
            self.walk_closed.set()


async def test_an_abandoned_search_stops_its_thread(tmp_path: Path) -> None:
    endless = EndlessWorkspace(tmp_path / "endless")
    registry = ToolRegistry()
    register_builtin_tools(registry, endless)
    spec = AgentSpec(agent_id="worker", tool_policy=ToolPolicy(timeout=0.2))
    outcome = await call(registry, "search_files", spec, pattern="needle")
    assert outcome.error == "tool 'search_files' timed out after 0.2s (tool_policy.timeout); the call was abandoned"
    # The worker thread notices within a file, long before its own 10 s budget would stop it.
    assert await asyncio.to_thread(endless.walk_closed.wait, 2.0)
