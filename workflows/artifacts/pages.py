"""A run's artifacts (charts, bars) for the browser.

An artifact is served only through a run the user may see (`runs_visible`), and only if one
of that run's steps holds its key in its inputs or outputs: keys are guessable hashes, so the
run is what grants access. MinIO: a redirect to a presigned URL, except for JSON (plotly
figures), which the page fetches from script and which is served from here so that MinIO needs
no CORS rules; filesystem: the file itself.
"""

from collections.abc import Iterator
from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from workflows.artifacts.store import KEY, artifact_open, artifact_url, content_type
from workflows.errors import StepError
from workflows.selectors import run_steps, runs_visible

# Keys are content-addressed: the bytes behind a key never change.
FILE_CACHE_CONTROL = "private, max-age=3600"


def _strings(value: Any) -> Iterator[str]:
    """Every string value in a JSON document, however deeply nested."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def run_references(*, run, key: str) -> bool:
    """Whether a step of the run holds the key in its inputs or outputs."""
    for inputs, outputs in run_steps(run=run).values_list("inputs", "outputs"):
        if any(s == key for s in _strings(outputs)) or any(s == key for s in _strings(inputs)):
            return True
    return False


@require_safe
def run_artifact(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    run = get_object_or_404(runs_visible(user=request.user), pk=pk)
    if not KEY.fullmatch(key) or not run_references(run=run, key=key):
        raise Http404("No such artifact in this run")
    try:
        url = None if key.endswith(".json") else artifact_url(key=key)
        if url:
            response: HttpResponse = HttpResponseRedirect(url)
            # The presigned URL expires: never reuse a cached redirect.
            response["Cache-Control"] = "private, no-cache"
            return response
        response = FileResponse(artifact_open(key=key), content_type=content_type(key))
    except StepError as exc:
        raise Http404("Artifact missing from the store") from exc
    response["Cache-Control"] = FILE_CACHE_CONTROL
    return response
