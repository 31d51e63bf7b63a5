"""Writes for prompts and AI records."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from strategies.ai.prompt_defaults import PROMPT_DEFAULTS
from strategies.ai.prompts import DEFAULT_KINDS, PLACEHOLDERS, placeholders_unknown
from strategies.models import AgentMessage, AiRecord, PromptTemplate
from workflows.errors import ApplicationError

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")


def prompt_check(*, key: str, kind: str, title: str, system: str, user: str) -> None:
    if not KEY.fullmatch(key or ""):
        raise ApplicationError(
            f'Prompt key "{key}" must be 1-60 lowercase letters, digits, "_" or "-", starting with a letter or digit'
        )
    if kind not in PLACEHOLDERS:
        raise ApplicationError(f'Prompt kind "{kind}" is not one of {", ".join(sorted(PLACEHOLDERS))}')
    if not title.strip():
        raise ApplicationError("A prompt needs a title")
    for field, text in (("system", system), ("user", user)):
        if not text.strip():
            raise ApplicationError(f"The {field} prompt is empty")
        unknown = placeholders_unknown(text, kind)
        if unknown:
            allowed = ", ".join("{{" + n + "}}" for n in sorted(PLACEHOLDERS[kind]))
            raise ApplicationError(
                f"The {field} prompt uses {', '.join('{{' + n + '}}' for n in unknown)}, which a {kind} prompt "
                f"cannot fill; it may use {allowed}"
            )


@transaction.atomic
def prompt_save(
    *, key: str, kind: str, title: str, system: str, user: str, message: str = "", author=None
) -> PromptTemplate:
    """Save a prompt as its next version (version 1 for a new key). Nothing is written if it is invalid."""
    prompt_check(key=key, kind=kind, title=title, system=system, user=user)
    existing = PromptTemplate.objects.filter(key=key)
    first = existing.order_by("version").first()
    if first is not None and first.kind != kind:
        raise ApplicationError(f'Prompt "{key}" is a {first.kind} prompt; it cannot become a {kind} prompt')
    number = (existing.aggregate(n=Max("version"))["n"] or 0) + 1
    try:
        with transaction.atomic():
            return PromptTemplate.objects.create(
                key=key,
                version=number,
                kind=kind,
                title=title.strip()[:200],
                system=system,
                user=user,
                message=message[:500],
                created_by=author,
            )
    except IntegrityError as exc:
        raise ApplicationError(f'Prompt "{key}" was saved by someone else at the same time; save again') from exc


def prompts_seed() -> list[PromptTemplate]:
    """Version 1 of every built-in prompt that is not in the database yet."""
    created = []
    for key, text in PROMPT_DEFAULTS.items():
        if PromptTemplate.objects.filter(key=key).exists():
            continue
        try:
            created.append(
                prompt_save(
                    key=key,
                    kind=DEFAULT_KINDS[key],
                    title=text["title"],
                    system=text["system"],
                    user=text["user"],
                    message="Built-in default",
                )
            )
        except ApplicationError:
            if not PromptTemplate.objects.filter(key=key).exists():  # not a concurrent seed: a real problem
                raise
    return created


@transaction.atomic
def ai_record_create(*, messages: list[dict[str, Any]] | None = None, **fields: Any) -> AiRecord:
    """Store what an AI step asked and got, with an agent team's conversation when there is one."""
    fields["cost_usd"] = Decimal(str(round(fields.get("cost_usd", 0) or 0, 6)))
    record = AiRecord.objects.create(**fields)
    AgentMessage.objects.bulk_create(AgentMessage(record=record, **message) for message in messages or [])
    return record
