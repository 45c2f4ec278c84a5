"""The task charter: ``context/TASK_CHARTER.md`` / ``.json`` and the planner → implementer → QA gate.

``model`` holds the plain data, ``markdown`` parses and renders the file, ``lint`` finds
placeholders, ``gate`` is the state machine, ``files`` persists in the workspace, ``workflow``
drives agents through ``PenguinCore`` and ``tools`` gives agents ``charter_read``/``charter_update``.
See ``docs/charter.md``.
"""

from penguin.charter.files import JSON_PATH, MARKDOWN_PATH, CharterFiles, from_json, to_json
from penguin.charter.gate import CharterGate
from penguin.charter.lint import Problem, lint
from penguin.charter.markdown import parse, render
from penguin.charter.model import Change, Charter, GateState, Item, Verdict
from penguin.charter.workflow import CharterRunResult, CharterWorkflow

__all__ = [
    "JSON_PATH",
    "MARKDOWN_PATH",
    "Change",
    "Charter",
    "CharterFiles",
    "CharterGate",
    "CharterRunResult",
    "CharterWorkflow",
    "GateState",
    "Item",
    "Problem",
    "Verdict",
    "from_json",
    "lint",
    "parse",
    "render",
    "to_json",
]
