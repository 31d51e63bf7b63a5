"""`{% idempotency_field %}`: a start form's hidden one-time key (workflows/idempotency.py), so a
double click or a browser's re-sent POST answers with the first run instead of starting another."""

import uuid

from django import template
from django.utils.html import format_html

from workflows.idempotency import FORM_FIELD

register = template.Library()


@register.simple_tag
def idempotency_field() -> str:
    return format_html('<input type="hidden" name="{}" value="{}">', FORM_FIELD, uuid.uuid4().hex)
