"""The market-data upload page: the user's own uploads and a form to add or replace one."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from brokers.marketdata.bar_sizes import BARS
from brokers.marketdata.uploads import bars_upload, uploads_visible
from workflows.errors import ApplicationError


def _page(request: HttpRequest, *, error: str = "", form: dict | None = None, status: int = 200) -> HttpResponse:
    context = {
        "section": "market-data",
        "uploads": uploads_visible(user=request.user),
        "bars": BARS,
        "error": error,
        "form": form or {"symbol": "", "bar": "1d"},
    }
    return render(request, "brokers/upload.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def market_data_upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request)
    form = {"symbol": request.POST.get("symbol", "").strip(), "bar": request.POST.get("bar", "")}
    upload_file = request.FILES.get("file")
    if upload_file is None:
        return _page(request, error="Choose a CSV file to upload.", form=form, status=400)
    try:
        upload = bars_upload(
            owner=request.user,
            symbol=form["symbol"],
            bar=form["bar"],
            filename=upload_file.name,
            data=upload_file.read(),
        )
    except ApplicationError as exc:
        return _page(request, error=exc.message, form=form, status=400)
    messages.success(
        request, f"Imported {upload.rows} {upload.symbol} {upload.bar} bars, {upload.first} .. {upload.last}."
    )
    for split in upload.splits:
        messages.info(request, f"Split-adjusted: {split['message']}.")
    for warning in upload.warnings:
        messages.warning(request, f"Possible unadjusted split: {warning['message']}")
    return redirect("market-data-upload")
