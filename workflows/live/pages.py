"""The live status stream of a run, as server-sent events (see workflows/live/stream.py).

Login is required by the pages middleware (anonymous: redirect to the login page); a run the
user may not see (not theirs, not staff) is a 404, like its page.
"""

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from workflows.live.stream import RunEventStream
from workflows.selectors import runs_visible


@require_safe
def run_events(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    run = get_object_or_404(runs_visible(user=request.user), pk=pk)
    # A reconnecting EventSource sends the header; the page's first connection the query.
    last_event_id = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id", "")
    stream = RunEventStream(run.pk, last_event_id=last_event_id)
    # Under ASGI a synchronous iterator would be read to its end before anything is sent.
    content = stream.aiter() if isinstance(request, ASGIRequest) else iter(stream)
    response = StreamingHttpResponse(content, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
