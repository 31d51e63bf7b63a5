"""Idempotency-Key: a retried start request answers with what the first one started, instead of
starting another run (and placing another order).

The key is the client's (the `Idempotency-Key` header, 1-200 printable ASCII characters), scoped
to the user who sends it. It is written on the Run or Batch by the same INSERT that creates it,
under a unique constraint on (created_by, idempotency_key): of two concurrent requests with one
key only one row can be written, and the other, failing at the constraint, answers with the row
that won. A fingerprint of what the request asked to start is stored with the key, so the same key
with another request is refused (HTTP 409) rather than answered with something else.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction

from workflows.errors import ApplicationError, IdempotencyConflict

HEADER = "Idempotency-Key"
# The same key in a page's start form (a hidden field, `{% idempotency_field %}`).
FORM_FIELD = "idempotency_key"
MAX_LENGTH = 200
_KEY = re.compile(rf"[ -~]{{1,{MAX_LENGTH}}}")  # printable ASCII: what an HTTP header carries safely

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class Idempotency:
    """A request's key and the fingerprint of what it asks for."""

    key: str
    fingerprint: str


def idempotency_of(headers: Mapping[str, str], request: dict[str, Any]) -> Idempotency | None:
    """The request's Idempotency-Key with the fingerprint of `request` (what it asks to start), or
    None without the header. A malformed key is an ApplicationError (400) naming the header."""
    key = headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.fullmatch(key) or not key.strip():
        shown = key[:40] + ("..." if len(key) > 40 else "")
        raise ApplicationError(
            f"The {HEADER} header must be 1-{MAX_LENGTH} printable ASCII characters, not {shown!r} "
            f"({len(key)} characters)"
        )
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return Idempotency(key=key, fingerprint=hashlib.sha256(canonical.encode()).hexdigest())


def form_idempotency(post: Mapping[str, str], request: dict[str, Any]) -> Idempotency | None:
    """The start form's one-time key (FORM_FIELD), checked like the header."""
    return idempotency_of({HEADER: post[FORM_FIELD]} if FORM_FIELD in post else {}, request)


def _earlier(model: type[M], user, idempotency: Idempotency) -> M | None:
    found = model.objects.filter(created_by=user, idempotency_key=idempotency.key).first()
    if found is not None and found.idempotency_fingerprint != idempotency.fingerprint:
        raise IdempotencyConflict(
            f"The {HEADER} {idempotency.key!r} was already used for another request "
            f"({model._meta.verbose_name} {found.pk}); use a new key for a new request"
        )
    return found


def start_once(
    model: type[M], *, user, idempotency: Idempotency | None, start: Callable[[Idempotency | None], M]
) -> tuple[M, bool]:
    """`start(idempotency)` once per (user, key): (the row it wrote, False), or, for a key already
    used with the same request, (the row the first request wrote, True). `start` must write the key
    on its `model` row; it runs in a transaction of its own that a lost race rolls back."""
    if idempotency is None:
        return start(None), False
    found = _earlier(model, user, idempotency)
    if found is not None:
        return found, True
    try:
        with transaction.atomic():
            return start(idempotency), False
    except IntegrityError:
        # Another request with this key committed first: answer with its row.
        found = _earlier(model, user, idempotency)
        if found is None:
            raise
        return found, True
