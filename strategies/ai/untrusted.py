"""Reading what a model server sends, where a lenient reading could turn into a wrong trade or a wrong bill.

`strict_loads` is the one JSON parser for model text (the model client's answers, the agent team's final
decision and its tool calls). Python's json.loads keeps the last of two equal keys, so
`{"action": "HOLD", "action": "BUY"}` would read as BUY although the model said HOLD first; an answer that says
two things is no answer, so a repeated key at any depth is an error, and so are NaN, Infinity and numbers that
overflow to infinity. The caller turns the error into HOLD (safety rule 2).

`token_count` reads one count of a usage report: a negative count would be a negative cost that lowers what a
run has spent against its AI budget, so anything but a whole number in range is an error, never a number.
"""

from __future__ import annotations

import json
import math
from typing import Any

# More tokens than any model's context and answer together: a larger count is a broken or lying server, and
# what a run sums of such counts still fits the records' integer columns.
MAX_TOKENS = 100_000_000
_MAX_SHOWN = f"{MAX_TOKENS:,}".replace(",", " ")
# How the model client and the agent team both begin the error of a reply refused for its usage report.
USAGE_INVALID = "The model server's usage report is invalid"


class AmbiguousJson(ValueError):
    """A JSON object with the same key twice: valid syntax, two meanings."""


def strict_loads(text: str) -> Any:
    """`text` as JSON. AmbiguousJson on a repeated key at any depth; another ValueError (json.JSONDecodeError for
    bad syntax) on NaN, Infinity or a number out of range."""
    return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant, parse_float=_finite)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Called for every object, innermost first, so a repeat inside key_levels is caught like one at the top.
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise AmbiguousJson(
                f'the key "{key}" appears twice in one object ({_brief(seen[key])}, then {_brief(value)}); '
                "an answer that says two things is no answer"
            )
        seen[key] = value
    return seen


def _brief(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise ValueError(f"{literal} is out of range")
    return value


def token_count(value: object, name: str) -> int:
    """One count of a usage report: None (the server reports none, as llama.cpp may) is 0; a negative, fractional,
    non-numeric or absurdly large count is a ValueError naming the field and the value."""
    if value is None:
        return 0
    # bool is an int in Python; true is no count.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ValueError(f"{name} is {shown}, not a token count (a whole number from 0 to {_MAX_SHOWN})")
    return value
