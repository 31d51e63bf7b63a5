"""`GET /api/analytics/`: a workflow's, strategy's or prompt version's figures (see selectors.py)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from strategies.analytics.selectors import ScopeNotFound, analytics_query


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
            return Response(analytics_query(user=request.user, query=request.GET))
        except ScopeNotFound as exc:
            raise NotFound(str(exc)) from exc
