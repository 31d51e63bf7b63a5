"""Prompt placeholders: which `{{name}}` each kind of prompt may use, and filling them in."""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"{{\s*(\w+)\s*}}")

# What the step of each kind knows when it asks the model.
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "chart": frozenset({"symbol", "bar", "last_date", "last_close", "indicators", "instructions"}),
    "consolidate": frozenset({"symbol", "analyses", "instructions"}),
    "decide": frozenset({"symbol", "analysis", "last_close", "atr", "indicators", "instructions"}),
}

# The kind of each built-in prompt (their text is in prompt_defaults.py).
DEFAULT_KINDS = {"chart_daily": "chart", "chart_weekly": "chart", "consolidate": "consolidate", "decide": "decide"}


def placeholders_unknown(text: str, kind: str) -> list[str]:
    """Placeholders in `text` that a prompt of this kind cannot fill, in order of appearance."""
    allowed = PLACEHOLDERS[kind]
    return list(dict.fromkeys(name for name in PLACEHOLDER.findall(text) if name not in allowed))


def prompt_render(text: str, values: Mapping[str, object]) -> str:
    """`text` with each {{name}} replaced by its value. Names were checked when the prompt was saved."""
    return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "")), text)
