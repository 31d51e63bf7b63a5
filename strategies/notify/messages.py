"""Decisions and orders as text, for the notify.webhook step and a strategy's own notifications.

Inputs are the steps' outputs (untrusted model text included), so every value is checked before use."""

from __future__ import annotations

from typing import Any

from strategies.risk.rules import r_coefficient
from workflows.notify.channels import text_cut


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def price_text(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{number:,.4f}".rstrip("0").rstrip(".")


def decision_r(decision: dict[str, Any] | None) -> float | None:
    """R at the conservative target, from the decision's levels by the one R formula (never the model's
    R); None when the decision has no valid levels."""
    if not isinstance(decision, dict) or decision.get("action") not in ("BUY", "SELL"):
        return None
    side = "long" if decision["action"] == "BUY" else "short"
    try:
        return r_coefficient(
            side, decision.get("entry"), decision.get("stop_loss"), decision.get("take_profit_conservative")
        )
    except ValueError:
        return None


def decision_lines(decision: Any) -> list[str]:
    """A decision (ai.decide / ai.agent_team output) as a few lines of text."""
    if not isinstance(decision, dict) or decision.get("action") not in ("BUY", "SELL", "HOLD"):
        return []
    action = decision["action"]
    head = f"Decision: {action}"
    if isinstance(decision.get("confidence"), str):
        head += f" (confidence {decision['confidence']})"
    if decision.get("analyst") == "offline":
        head += " · offline rule-based analyst, no AI model"
    lines = [head]
    if action in ("BUY", "SELL"):
        entry, stop = price_text(decision.get("entry")), price_text(decision.get("stop_loss"))
        targets = [price_text(decision.get(f"take_profit_{k}")) for k in ("conservative", "aggressive")]
        lines.append(f"Entry {entry} · stop {stop} · targets {' / '.join(targets)}")
        r = decision_r(decision)
        if r is not None:
            lines.append(f"R {r:.2f} at the conservative target (computed from these levels)")
    if decision.get("error"):
        lines.append(f"No trade: {str(decision['error'])[:300]}")
    elif isinstance(decision.get("reasoning"), str) and decision["reasoning"].strip():
        lines.append(f"Reasoning: {text_cut(decision['reasoning'].strip(), 500)}")
    return lines


def order_lines(order: Any) -> list[str]:
    """A broker.place_order output as a line: what was sent, or why nothing was."""
    if not isinstance(order, dict) or "sent" not in order:
        return []
    if not order.get("sent"):
        status = "blocked" if order.get("status") == "blocked" else "not sent"
        return [f"Order {status}: {str(order.get('reason') or 'no reason given')[:300]}"]
    quantity = order.get("quantity") if isinstance(order.get("quantity"), int) else "?"
    line = (
        f"Order {order.get('order_id')}: {order.get('side')} {quantity} {order.get('symbol')} @ "
        f"{price_text(order.get('entry'))}, take-profit {price_text(order.get('take_profit'))}, "
        f"stop-loss {price_text(order.get('stop_loss'))} · {order.get('status')} ({order.get('mode') or 'paper'})"
    )
    r = _num(order.get("r"))
    return [line + (f" · R {r:.2f}" if r is not None else "")]
