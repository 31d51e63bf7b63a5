"""The Analytics page: a workflow's, strategy's or prompt version's figures (the API: api.py).

Both read `strategies.analytics.selectors`; a workflow or strategy that is not the user's (or does not
exist) is a 404, a malformed parameter a 400 with the reason.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from strategies.analytics.selectors import ScopeNotFound, analytics_choices, analytics_query, scope_params
from workflows.errors import ApplicationError


@require_safe
def analytics_page(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {
        "section": "analytics",
        "choices": analytics_choices(user=request.user),
        "selected_scope": next((f"{k}:{v}" for k, v in scope_params(request.GET).items() if v), ""),
        "selected_from": request.GET.get("from", ""),
        "selected_to": request.GET.get("to", ""),
    }
    status = 200
    try:
        context["figures"] = analytics_query(user=request.user, query=request.GET)
    except ScopeNotFound as exc:
        raise Http404(str(exc)) from exc
    except ApplicationError as exc:
        context["error"], status = exc.message, 400
    return render(request, "strategies/analytics.html", context, status=status)
