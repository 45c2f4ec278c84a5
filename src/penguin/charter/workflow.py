"""``CharterWorkflow``: drive planner → implementer → QA over the shared charter until QA approves.

Every hand-off is a message on the MessageBus through the core's ``Messenger`` (an envelope, a
receipt, a real turn in the recipient's inbox), all with the run id as ``correlation_id``:

1. the parent asks the planner (``action``) to write ``context/TASK_CHARTER.md`` with the
   ``charter_update`` tool (or to answer with the charter's Markdown);
2. the charter is linted. Any problem halts the run before an implementer turn: the implementer
   sends the problems to the parent as a ``status`` message so the parent can tighten the spec;
3. the planner's brief reaches the implementer (``action``); its ``CHANGED:``/``VERIFIED:`` lines
   go into the changes log and the charter moves to IN_QA;
4. the implementer's report reaches QA (``action``); QA's ``[x] <id>`` lines mark items done, then
   ``APPROVE`` or ``REJECT: <reason>``. A rejection (or an approval while items are still open)
   travels from QA to the implementer as a ``verdict`` message and the loop repeats, at most
   ``max_rounds`` times;
5. the final verdict goes from QA to the parent as a ``verdict`` message. The run finishes
   (``approved``) only through ``CharterGate.finish``: APPROVED with every item done.

``BLOCKED:`` from an agent, a reply in neither format, or a charter moved out from under the run
halts with a ``status`` message to the parent instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from penguin.charter.files import MARKDOWN_PATH, CharterFiles
from penguin.charter.gate import CharterGate
from penguin.charter.lint import Problem, lint
from penguin.charter.markdown import parse, render
from penguin.charter.model import Charter, GateState
from penguin.charter.replies import parse_implementer, parse_qa
from penguin.coordination.targets import Request
from penguin.errors import Conflict, NotFound, PenguinError, ValidationFailed
from penguin.naming import new_id

if TYPE_CHECKING:
    from penguin.core import PenguinCore

Outcome = Literal["approved", "halted", "rejected", "failed"]
MAX_ROUNDS_LIMIT = 20

PLANNER_BRIEF = """Write the task charter for the goal below with the charter_update tool (argument \
`markdown`), in the TASK_CHARTER.md layout: sections "## Goal", "## Paths" (workspace-relative, one \
'- path' per line), "## Acceptance Criteria" ('- [ ] AC1: ...') and "## QA Checklist" ('- [ ] QA1: ...'). \
Leave no placeholder (Pending, TBD, TODO, ???): if something is unclear, leave it out and the parent \
will be asked.

Goal: {goal}"""

IMPLEMENTER_BRIEF = """Implement the task in this charter ({path}). Reply with one line \
'CHANGED: <what changed>' per change, each followed by 'VERIFIED: <how you checked it>'. If the \
charter is unclear, reply 'BLOCKED: <what is missing>' instead of guessing.

{charter}"""

REWORK_BRIEF = """REJECT: {reason}

QA sent the charter back. Open items: {open_items}. Fix the issue and reply with CHANGED:/VERIFIED: \
lines (or BLOCKED: <why>).

{charter}"""

QA_BRIEF = """Review the work against this charter ({path}). Mark each item you verified with a line \
'[x] <item id>: <evidence>', then reply 'APPROVE' if every item holds or 'REJECT: <reason>' if not \
(or 'BLOCKED: <why>' if the charter is unclear).

Implementer's report:
{report}

{charter}"""


@dataclass(frozen=True, slots=True, kw_only=True)
class CharterRunResult:
    """How a charter run ended."""

    #: The run id, also the ``correlation_id`` of every message of the run.
    run_id: str
    #: ``approved`` (finished), ``halted`` (status sent to the parent), ``rejected`` (rounds used
    #: up; the last verdict was sent to the parent) or ``failed`` (an agent turn failed).
    outcome: Outcome
    #: The charter as it was left (None if no charter could be read).
    charter: Charter | None
    #: Implementer → QA rounds that ran.
    rounds: int
    #: Why the run did not finish ("" when approved).
    reason: str = ""
    #: Lint problems that halted the run.
    problems: tuple[Problem, ...] = ()
    #: The ``status`` or ``verdict`` message sent to the parent at the end.
    message_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "outcome": self.outcome, "rounds": self.rounds, "reason": self.reason,
            "charter": self.charter.to_dict() if self.charter is not None else None,
            "problems": [p.to_dict() for p in self.problems], "message_id": self.message_id,
        }


class _Stop(Exception):  # noqa: N818 - control flow inside run(), never escapes it
    def __init__(self, outcome: Outcome, reason: str, sender: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.sender = sender
        self.problems = problems


class CharterWorkflow:
    """One charter run over a core's agents and workspace.

    Args:
        core: the ``PenguinCore`` whose messenger, agents and workspace the run uses.
        files: where the charter lives.
        timeout: seconds each agent turn may take (None = no limit); a late turn is cancelled.
    """

    def __init__(self, core: PenguinCore, files: CharterFiles, *, timeout: float | None = 600.0) -> None:
        self._core = core
        self._files = files
        self._timeout = timeout
        self.run_id = new_id("chr")
        self._rounds = 0

    async def run(self, goal: str | None, *, planner: str | None, implementer: str, qa: str,
                  parent: str = "human", max_rounds: int = 3) -> CharterRunResult:
        """Run the gate to its end; see the module docstring. Raises only for invalid arguments."""
        self._check(goal, planner, implementer, qa, parent, max_rounds)
        if goal is None:
            stored = await self._files.get()
            if stored.state not in (GateState.DRAFT, GateState.READY):
                raise Conflict(f"the stored charter is {stored.state.value!r}; start a new run with goal=...",
                               field="goal")
        try:
            charter = await self._plan(goal, planner, parent)
            problems = tuple(lint(charter, workspace=self._core.workspace))
            if problems:
                raise _Stop("halted", "the charter is not ready: " + "; ".join(map(str, problems)),
                            implementer, problems)
            gate = CharterGate(charter, workspace=self._core.workspace)
            gate.ready()
            await self._files.save(gate.start())
            return await self._loop(implementer, qa, planner or parent, parent, max_rounds)
        except _Stop as stop:
            return await self._halt(stop, parent)
        except (ValidationFailed, Conflict, NotFound) as exc:
            # A charter an agent wrote by hand that does not parse (or deleted), or a transition the
            # stored charter no longer allows: the parent must look, so it is a halt, not a crash.
            return await self._halt(_Stop("halted", exc.detail, implementer), parent)

    # Steps -----------------------------------------------------------------------------------

    def _check(self, goal: str | None, planner: str | None, implementer: str, qa: str, parent: str,
               max_rounds: int) -> None:
        if goal is not None and (not isinstance(goal, str) or not goal.strip()):
            raise ValidationFailed("goal must be a non-empty string, or None to use the stored charter", field="goal")
        if goal is None and planner is not None:
            raise ValidationFailed("a planner needs a goal; give goal=... or planner=None", field="goal")
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or not 1 <= max_rounds <= MAX_ROUNDS_LIMIT:
            raise ValidationFailed(f"max_rounds must be an integer from 1 to {MAX_ROUNDS_LIMIT}", field="max_rounds")
        for agent_id in (planner, implementer, qa):
            if agent_id is not None:
                self._core.get_agent(agent_id)
        if parent != "human":
            self._core.get_agent(parent)

    async def _ask(self, sender: str, agent_id: str, text: str, message_type: str) -> str:
        request = Request(text=text, sender=sender, message_type=message_type, correlation_id=self.run_id,
                          timeout=self._timeout, on_timeout="cancel", metadata={"charter_run": self.run_id})
        answer = await self._core.messenger.ask(agent_id, request)
        if not answer.ok:
            detail = answer.error.detail if answer.error is not None else answer.status
            raise _Stop("failed", f"{agent_id} did not answer: {detail}", agent_id)
        return answer.text or ""

    async def _plan(self, goal: str | None, planner: str | None, parent: str) -> Charter:
        if goal is None:
            return await self._files.save(CharterGate(await self._files.get()).revise())
        draft = await self._files.save(Charter(goal=goal))
        if planner is None:
            return draft
        reply = await self._ask(parent, planner, PLANNER_BRIEF.format(goal=goal), "action")
        charter = await self._files.get()
        if charter == draft and "## " in reply:
            # The planner answered with the charter instead of calling the tool: adopt it.
            start = reply.find("# Task Charter")
            try:
                written = parse(reply[start:] if start >= 0 else reply)
            except ValidationFailed as exc:
                raise _Stop("halted", f"the planner's charter does not parse: {exc.detail}", planner) from None
            charter = await self._files.save(CharterGate(draft).revise(
                goal=written.goal or goal, paths=written.paths, acceptance=written.acceptance,
                checklist=written.checklist))
        if charter.state is not GateState.DRAFT:
            raise _Stop("halted", f"the planner left the charter in state {charter.state.value!r}", planner)
        return charter

    async def _gate(self, expected: GateState, who: str) -> CharterGate:
        """The stored charter (agents' tools may have changed it) in the state the run expects."""
        charter = await self._files.get()
        if charter.state is not expected:
            raise _Stop("halted", f"the charter moved to {charter.state.value!r} while {who} worked; "
                        f"expected {expected.value!r}", who)
        return CharterGate(charter, workspace=self._core.workspace)

    async def _loop(self, implementer: str, qa: str, briefer: str, parent: str, max_rounds: int) -> CharterRunResult:
        charter = (await self._files.get())
        text = IMPLEMENTER_BRIEF.format(path=MARKDOWN_PATH, charter=render(charter))
        sender, message_type = briefer, "action"
        while True:
            self._rounds += 1
            before = len(charter.changes)
            report_text = await self._ask(sender, implementer, text, message_type)
            report = parse_implementer(report_text)
            if report.blocked is not None:
                raise _Stop("halted", f"{implementer} is blocked: {report.blocked}", implementer)
            gate = await self._gate(GateState.IMPLEMENTING, implementer)
            for summary, verification in report.changes:
                gate.record_change(implementer, summary, verification)
            if len(gate.charter.changes) == before:
                raise _Stop("halted", f"{implementer} reported no change (expected 'CHANGED: ...' lines)",
                            implementer)
            charter = await self._files.save(gate.submit())
            verdict = await self._review(qa, implementer, report_text)
            if verdict is None:
                return await self._finish(qa, parent)
            charter = await self._files.get()
            if self._rounds >= max_rounds:
                reason = f"changes still requested after {self._rounds} round(s): {verdict}"
                message_id = await self._send(qa, parent, f"REJECT: {verdict}", "verdict", reason=reason)
                return CharterRunResult(run_id=self.run_id, outcome="rejected", charter=charter,
                                        rounds=self._rounds, reason=reason, message_id=message_id)
            charter = await self._files.save(CharterGate(charter).start())
            open_items = ", ".join(charter.open_items) or "none"
            text = REWORK_BRIEF.format(reason=verdict, open_items=open_items, charter=render(charter))
            sender, message_type = qa, "verdict"

    async def _review(self, qa: str, implementer: str, report: str) -> str | None:
        """Ask QA; None when it approved, else the reason changes are requested (recorded)."""
        charter = await self._files.get()
        reply = await self._ask(implementer, qa, QA_BRIEF.format(path=MARKDOWN_PATH, report=report.strip(),
                                                                 charter=render(charter)), "action")
        parsed = parse_qa(reply)
        gate = await self._gate(GateState.IN_QA, qa)
        unknown = []
        for item_id, evidence in parsed.marks:
            try:
                gate.mark_done(item_id, evidence)
            except NotFound:
                unknown.append(item_id)
        if parsed.decision == "blocked":
            await self._files.save(gate.charter)
            raise _Stop("halted", f"{qa} is blocked: {parsed.reason}", qa)
        if parsed.decision == "none":
            await self._files.save(gate.charter)
            raise _Stop("halted", f"{qa} gave no verdict (expected 'APPROVE' or 'REJECT: <reason>')", qa)
        reason = parsed.reason
        if parsed.decision == "approve":
            try:
                await self._files.save(gate.approve(qa))
                return None
            except Conflict as exc:
                # QA approved without checking every item: the criteria are unmet, so the gate
                # loops back instead of finishing.
                reason = exc.detail
        if unknown:
            reason += f" (unknown item ids marked: {', '.join(unknown)})"
        await self._files.save(gate.request_changes(qa, reason))
        return reason

    async def _finish(self, qa: str, parent: str) -> CharterRunResult:
        charter = (await self._gate(GateState.APPROVED, qa)).finish()
        message_id = await self._send(qa, parent, "APPROVE", "verdict")
        return CharterRunResult(run_id=self.run_id, outcome="approved", charter=charter, rounds=self._rounds,
                                message_id=message_id)

    # Messages to the parent ------------------------------------------------------------------

    async def _send(self, sender: str, parent: str, content: str, message_type: str, *,
                    reason: str = "", problems: tuple[Problem, ...] = ()) -> str:
        charter = await self._load_quiet()
        metadata: dict[str, Any] = {
            "charter_run": self.run_id, "charter_path": MARKDOWN_PATH, "rounds": self._rounds,
            "state": charter.state.value if charter is not None else None,
            "open_items": list(charter.open_items) if charter is not None else [],
        }
        if reason:
            metadata["reason"] = reason
        if problems:
            metadata["problems"] = [p.to_dict() for p in problems]
        receipt = await self._core.send_message(sender, parent, content, message_type=message_type,
                                                metadata=metadata, correlation_id=self.run_id)
        return receipt.message_id

    async def _load_quiet(self) -> Charter | None:
        try:
            return await self._files.load()
        except PenguinError:
            return None

    async def _halt(self, stop: _Stop, parent: str) -> CharterRunResult:
        content = f"HALTED: {stop.reason}"
        if stop.problems:
            content += f"\nFix {MARKDOWN_PATH} (or tighten the goal) and run again."
        charter = await self._load_quiet()
        message_id = await self._send(stop.sender, parent, content, "status", reason=stop.reason,
                                      problems=stop.problems)
        return CharterRunResult(run_id=self.run_id, outcome=stop.outcome, charter=charter, rounds=self._rounds,
                                reason=stop.reason, problems=stop.problems, message_id=message_id)


__all__ = ["CharterRunResult", "CharterWorkflow", "Outcome"]
