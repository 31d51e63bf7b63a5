"""The DRF exception handler: every ApplicationError is an HTTP 400 with a clear message."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from workflows.errors import ApplicationError


def exception_handler(exc, context):
    """ApplicationError -> HTTP 400 (or its `status`) {"detail": message, ...extra}; the rest as DRF does."""
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, **exc.extra}, status=exc.status)
    return drf_exception_handler(exc, context)
