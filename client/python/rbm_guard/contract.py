"""The guard's contract, as generated from the TypeScript definition (guard-contract.json, written by
scripts/generate-contract.ts; never edit it). Every rule this package applies comes from here."""
from __future__ import annotations

import json
import re
import unicodedata
from importlib import resources
from typing import Any

CONTRACT: dict[str, Any] = json.loads(resources.files(__package__).joinpath("guard-contract.json").read_text("utf-8"))

WORKFLOW_TYPE: str = CONTRACT["workflowType"]
DEFAULT_TASK_QUEUE: str = CONTRACT["defaultTaskQueue"]
GUARD_RULES: int = CONTRACT["guardRules"]
SIGNAL_TRACK: str = CONTRACT["signals"]["track"]["name"]
QUERY_STATUS: str = CONTRACT["queries"]["status"]["name"]
UPDATE_CANCEL: str = CONTRACT["updates"]["cancel"]["name"]
UPDATE_EXTEND: str = CONTRACT["updates"]["extend"]["name"]
SEARCH_ATTRIBUTES: dict[str, str] = {sa["name"]: sa["type"] for sa in CONTRACT["searchAttributes"]}

_AGENT = CONTRACT["agentId"]
_MESSAGE = CONTRACT["messageId"]
AGENT_ID_RE = re.compile(_AGENT["pattern"])
# The message-id pattern uses \p{…}, which `re` lacks: its refused Unicode categories are checked instead.
_MESSAGE_REFUSED = frozenset(_MESSAGE["refusedCategories"])
# JS regexes: \d is ASCII only there, so it is here too (the phone, the duration, the date-time).
ISO_DATE_TIME_RE = re.compile(CONTRACT["dateTime"]["pattern"], re.ASCII | (re.IGNORECASE if CONTRACT["dateTime"]["caseInsensitive"] else 0))
DURATION_RE = re.compile(CONTRACT["duration"]["pattern"], re.ASCII)
PHONE_RE = re.compile(CONTRACT["phone"]["pattern"], re.ASCII)
GUARD_ID_RE = re.compile(CONTRACT["workflowId"]["pattern"], re.DOTALL)


def normalize_agent_id(agent_id: str) -> str:
    """RBM writes agent ids bare and as `<id>@rbm.goog`; a guard knows its agent by the bare id."""
    rule = _AGENT["normalise"]
    text = agent_id.strip() if rule["trim"] else agent_id
    suffix = rule["stripSuffixCaseInsensitive"]
    return text[: -len(suffix)] if text.lower().endswith(suffix.lower()) else text


def agent_id_problem(agent_id: str) -> str | None:
    if not agent_id:
        return "must not be empty"
    if len(agent_id) > _AGENT["maxLength"]:
        return f"at most {_AGENT['maxLength']} characters"
    return None if AGENT_ID_RE.search(agent_id) else _AGENT["rule"]


def message_id_problem(message_id: str) -> str | None:
    if not message_id:
        return "must not be empty"
    if len(message_id) > _MESSAGE["maxLength"]:
        return f"at most {_MESSAGE['maxLength']} characters"
    if any(unicodedata.category(ch) in _MESSAGE_REFUSED for ch in message_id):
        return _MESSAGE["rule"]
    return None


def guard_workflow_id(agent_id: str, message_id: str) -> str:
    return CONTRACT["workflowId"]["template"].replace("{agentId}", normalize_agent_id(agent_id)).replace("{messageId}", message_id)


def parse_guard_workflow_id(workflow_id: str) -> tuple[str, str] | None:
    """(agentId, messageId) when `workflow_id` is exactly what guard_workflow_id makes of valid ids."""
    m = GUARD_ID_RE.match(workflow_id)
    if not m or m.end() != len(workflow_id):
        return None
    agent_id, message_id = m.group(1), m.group(2)
    if agent_id_problem(agent_id) or message_id_problem(message_id):
        return None
    return (agent_id, message_id) if guard_workflow_id(agent_id, message_id) == workflow_id else None


def default_policy(traffic_type: str) -> dict[str, Any]:
    return dict(CONTRACT["policyDefaults"][traffic_type])
