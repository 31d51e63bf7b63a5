"""Template tags of the live run page."""

from collections.abc import Sequence

from django import template

from workflows.live.stream import run_state_id as _run_state_id
from workflows.models import Run, StepRun

register = template.Library()


@register.simple_tag
def run_state_id(run: Run, steps: Sequence[StepRun]) -> str:
    """The state the page was rendered with, so its event stream sends only what changed since."""
    return _run_state_id(run, steps)
