"""The Analytics page and `GET /api/analytics/`: a workflow's, strategy's or prompt version's figures.

Both read `strategies.analytics.selectors`; a workflow or strategy that is not the user's (or does not
exist) is a 404, a malformed parameter a 400 with the reason.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from strategies.analytics.selectors import (
    ScopeNotFound,
    analytics_choices,
    analytics_compute,
    analytics_scope,
    date_range,
)
from workflows.errors import ApplicationError

SCOPES = ("workflow", "strategy", "prompt")


def _scope_params(request: HttpRequest) -> dict[str, str | None]:
    """workflow=, strategy= or prompt=; the page's selector sends one `scope=<kind>:<value>` instead."""
    values: dict[str, str | None] = {name: request.GET.get(name) or None for name in SCOPES}
    kind, _, value = (request.GET.get("scope") or "").partition(":")
    if kind in SCOPES and value and not any(values.values()):
        values[kind] = value
    return values


def _analytics(request: HttpRequest) -> dict[str, Any]:
    """Raises ApplicationError (400) or ScopeNotFound (404)."""
    scope = analytics_scope(user=request.user, **_scope_params(request))
    start, end = date_range(start=request.GET.get("from") or None, end=request.GET.get("to") or None)
    return analytics_compute(scope=scope, start=start, end=end)


@require_safe
def analytics_page(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {
        "section": "analytics",
        "choices": analytics_choices(user=request.user),
        "selected_scope": next((f"{k}:{v}" for k, v in _scope_params(request).items() if v), ""),
        "selected_from": request.GET.get("from", ""),
        "selected_to": request.GET.get("to", ""),
    }
    status = 200
    try:
        context["figures"] = _analytics(request)
    except ScopeNotFound as exc:
        raise Http404(str(exc)) from exc
    except ApplicationError as exc:
        context["error"], status = exc.message, 400
    return render(request, "strategies/analytics.html", context, status=status)


class AnalyticsView(APIView):
    @extend_schema(
        operation_id="analytics_retrieve",
        summary="Figures of one workflow, strategy or prompt version (none: all your runs) over a date range",
        parameters=[
            OpenApiParameter("workflow", OpenApiTypes.INT, description="A workflow id"),
            OpenApiParameter("strategy", OpenApiTypes.INT, description="A strategy id"),
            OpenApiParameter("prompt", OpenApiTypes.STR, description='A prompt version, "key:version"'),
            OpenApiParameter("from", OpenApiTypes.DATE, description="First day (default: 29 days before to)"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last day, included (default: today)"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        try:
            return Response(_analytics(request))
        except ScopeNotFound as exc:
            raise NotFound(str(exc)) from exc
