"""``ShellSandbox``: when it can run, what it shows, and that it ends what it started."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path

import pytest

from penguin import PenguinCore
from penguin.errors import SandboxUnavailable
from penguin.security.cgroups import Cgroups
from penguin.security.sandbox import SandboxLimits, ShellSandbox


async def output(sandbox: ShellSandbox, command: str, *, network: bool = False) -> tuple[int, str]:
    async with sandbox.run(command, network=network) as proc:
        assert proc.stdout is not None
        out = await proc.stdout.read()
        return await proc.wait(), out.decode()


def running(marker: str) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        return True
            except OSError:
                continue
    return False


async def test_a_missing_bubblewrap_makes_the_sandbox_unavailable(tmp_path: Path) -> None:
    sandbox = ShellSandbox(workspace=tmp_path, bwrap="no-such-bwrap")
    status = await sandbox.status()
    assert not status.available and status.mode == "required"
    assert status.detail == (
        "run_shell cannot be enabled: bubblewrap ('no-such-bwrap') is not installed; install it (apt-get install "
        'bubblewrap). Or set shell_sandbox = "off" (PENGUIN_SHELL_SANDBOX=off) to run commands unconfined'
    )
    with pytest.raises(SandboxUnavailable) as refused:
        await sandbox.require()
    assert refused.value.detail == status.detail and refused.value.field == "tool_policy.shell"
    with pytest.raises(SandboxUnavailable):
        await output(sandbox, "true")


async def test_root_without_a_pids_cgroup_has_no_process_limit_so_no_sandbox(tmp_path: Path) -> None:
    status = await ShellSandbox(workspace=tmp_path, cgroups=Cgroups(())).status()
    if os.geteuid() == 0:  # as the tests run here and in CI
        assert not status.available
        assert "Penguin runs as root, where the kernel does not enforce the process limit" in status.detail
    else:  # another user's RLIMIT_NPROC holds inside the sandbox's user namespace
        assert status.available and status.cgroup_controllers == frozenset()


async def test_the_workspace_may_not_be_the_data_directory(tmp_path: Path) -> None:
    status = await ShellSandbox(workspace=tmp_path, hidden=[tmp_path]).status()
    assert not status.available and "is the data directory itself" in status.detail


async def test_off_runs_unconfined_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sandbox = ShellSandbox(workspace=tmp_path / "ws", hidden=[tmp_path], mode="off")
    (tmp_path / "ws").mkdir()
    (tmp_path / "penguin.db").write_text("data")
    with caplog.at_level(logging.WARNING, logger="penguin.security"):
        assert await output(sandbox, "cat ../penguin.db; echo $HOME") == (0, f"data{tmp_path / 'ws'}\n")
    assert [r.getMessage() for r in caplog.records] == [f"shell sandbox: {(await sandbox.status()).detail}"]
    assert (await sandbox.status()).detail.startswith("shell_sandbox = off: commands run unconfined")


async def test_a_data_directory_inside_the_workspace_is_masked(tmp_path: Path) -> None:
    data = tmp_path / "ws" / ".penguin"
    data.mkdir(parents=True)
    (data / "penguin.db").write_text("every tenant's data")
    sandbox = ShellSandbox(workspace=tmp_path / "ws", hidden=[data])
    code, out = await output(sandbox, "ls -A .penguin; cat .penguin/penguin.db; touch .penguin/x; echo > ok.txt")
    assert code == 0
    assert out == ("cat: .penguin/penguin.db: No such file or directory\n"
                   "touch: cannot touch '.penguin/x': Read-only file system\n")
    assert sorted(os.listdir(data)) == ["penguin.db"] and (tmp_path / "ws" / "ok.txt").exists()


async def test_read_only_paths_are_readable_and_nothing_more(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "tool.sh").write_text("echo tool ran\n")
    (tmp_path / "ws").mkdir()
    sandbox = ShellSandbox(workspace=tmp_path / "ws", read_only=[tools])
    code, out = await output(sandbox, f"sh {tools}/tool.sh; touch {tools}/x")
    assert (code, out) == (1, f"tool ran\ntouch: cannot touch '{tools}/x': Read-only file system\n")


async def test_aclose_ends_running_commands_and_refuses_new_ones(tmp_path: Path) -> None:
    sandbox = ShellSandbox(workspace=tmp_path)
    marker = f"sleep 800.{uuid.uuid4().int % 10**6:06d}"
    async with sandbox.run(f"setsid {marker} & echo up; {marker}") as proc:
        assert proc.stdout is not None and await proc.stdout.readline() == b"up\n"
        assert running(marker)
        await sandbox.aclose()
        assert await proc.wait() == -9 and not running(marker)
    with pytest.raises(SandboxUnavailable, match="closed"):
        await output(sandbox, "true")


async def test_the_sandbox_is_probed_once_and_logs_what_confines_commands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = ShellSandbox(workspace=tmp_path, limits=SandboxLimits(max_processes=16))
    with caplog.at_level(logging.INFO, logger="penguin.security"):
        first, second = await asyncio.gather(sandbox.status(), sandbox.status())
    assert first is second and first.available
    assert first.detail.startswith("bubblewrap (")
    assert "user, pid, ipc, uts, cgroup and net namespaces; rlimits" in first.detail
    assert len(caplog.records) == 1


async def test_enabling_the_shell_is_refused_where_it_cannot_be_sandboxed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        await core.create_agent("ops", tool_policy={"shell": True})
    monkeypatch.setenv("PATH", str(tmp_path / "no-bwrap-here"))
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        with pytest.raises(SandboxUnavailable, match="bubblewrap"):
            await core.create_agent("ops2", tool_policy={"shell": True})
        with pytest.raises(SandboxUnavailable):
            await core.update_agent("ops", tool_policy={"shell": True, "deny": []})
        plain = await core.create_agent("plain", tool_policy={"deny": ["write_file"]})
        assert not plain.tool_policy.shell
        # An agent saved with the shell on keeps its policy, but its commands are refused.
        await core.update_agent("ops", model="scripted:tool",
                                model_parameters={"tool": "run_shell", "arguments": {"command": "id"}})
        reply = await core.chat("go", agent_id="ops")
        assert reply.text.startswith("error: run_shell cannot be enabled: bubblewrap ('bwrap') is not installed")
        assert reply.tool_calls[0]["denied"] == "sandbox"


async def test_a_data_directory_holding_the_workspace_inside_a_visible_tree_is_masked_around_it(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    workspace = tree / "data" / "workspace"
    workspace.mkdir(parents=True)
    (tree / "data" / "penguin.db").write_text("every tenant's data")
    (tree / "readme.txt").write_text("shared\n")
    sandbox = ShellSandbox(workspace=workspace, hidden=[tree / "data"], read_only=[tree])
    code, out = await output(sandbox, f"cat {tree}/readme.txt; ls -A {tree}/data; cat ../penguin.db; echo hi > f")
    assert (code, out) == (0, "shared\nworkspace\ncat: ../penguin.db: No such file or directory\n")
    assert (workspace / "f").read_text() == "hi\n"


async def test_concurrent_commands_each_get_their_cgroups_and_leave_none(tmp_path: Path) -> None:
    sandbox = ShellSandbox(workspace=tmp_path)
    outputs = await asyncio.gather(*(output(sandbox, f"sleep 0.2; echo {n}") for n in range(6)))
    assert outputs == [(0, f"{n}\n") for n in range(6)]
    parents = [h.parent for h in Cgroups.discover().hierarchies]
    assert parents and not [p for parent in parents for p in parent.glob(f"penguin-shell-{os.getpid()}-*")]
