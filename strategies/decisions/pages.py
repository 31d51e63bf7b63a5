"""The Decisions page: each AI decision with its charts, reasoning, R check and what came of it.

A decision is visible through its run (own workflows; staff all)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from strategies.decisions.selectors import decision_context, decisions_visible

DECISIONS_PER_PAGE = 25
ACTIONS = ("BUY", "SELL", "HOLD")


@require_safe
def decision_list(request: HttpRequest) -> HttpResponse:
    records = decisions_visible(user=request.user)
    filters: dict[str, str] = {}
    action = request.GET.get("action", "").strip().upper()
    if action in ACTIONS:
        records, filters["action"] = records.filter(action=action), action
    symbol = request.GET.get("symbol", "").strip().upper()
    if symbol:
        records, filters["symbol"] = records.filter(symbol=symbol), symbol
    decision = request.GET.get("decision", "")
    if re.fullmatch(r"[0-9]{1,18}", decision):
        records, filters["decision"] = records.filter(id=int(decision)), decision
    page = Paginator(records, DECISIONS_PER_PAGE).get_page(request.GET.get("page"))
    rows: list[Any] = list(page.object_list)
    decision_context(records=rows)
    context = {
        "section": "decisions",
        "page": page,
        "decisions": rows,
        "filters": filters,
        "filter_query": urlencode(filters),
        "actions": ACTIONS,
    }
    return render(request, "strategies/decisions.html", context)
