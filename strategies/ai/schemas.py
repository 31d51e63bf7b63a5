"""What AI steps produce: a chart analysis, a multi-timeframe consolidation, a trading decision.

These pydantic models validate untrusted model output. They are strict on purpose: a number
sent as text, a missing level, a stop on the wrong side of the entry or a confidence out of
range is an error, and an error is never a trade (the caller turns it into HOLD).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Action = Literal["BUY", "SELL", "HOLD"]
Bias = Literal["bullish", "bearish", "neutral"]
Trend = Literal["up", "down", "sideways"]
# "single" when only one timeframe was analysed.
Alignment = Literal["aligned", "mixed", "conflicting", "single"]

Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Confidence = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _Strict(BaseModel):
    # strict: "101.5" is not a number here; the prompts say levels must be numbers.
    # extra="ignore": models add fields (their own R, say) that we never trust or use.
    model_config = ConfigDict(strict=True, extra="ignore")


class KeyLevels(_Strict):
    support: list[Price] = Field(default_factory=list, max_length=10)
    resistance: list[Price] = Field(default_factory=list, max_length=10)


class Signal(_Strict):
    indicator: str = Field(min_length=1, max_length=60)
    reading: str = Field(min_length=1, max_length=300)
    bias: Bias


class Analysis(_Strict):
    """What one chart (one timeframe) shows."""

    trend: Trend
    bias: Bias
    confidence: Confidence
    key_levels: KeyLevels
    signals: list[Signal] = Field(default_factory=list, max_length=20)
    summary: str = Field(min_length=1, max_length=4000)


class Consolidation(Analysis):
    """Several timeframes' analyses merged into one view."""

    timeframe_alignment: Alignment


class Decision(_Strict):
    """A trading proposal. BUY and SELL carry every level, on the right sides of the entry."""

    action: Action
    entry: Price | None = None
    stop_loss: Price | None = None
    take_profit_conservative: Price | None = None
    take_profit_aggressive: Price | None = None
    confidence: Confidence
    timeframe_alignment: Alignment
    key_levels: KeyLevels
    reasoning: str = Field(min_length=1, max_length=8000)

    @field_validator("action", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        # "buy" is not ambiguous; anything that is not one of the three words still fails.
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _levels(self) -> Decision:
        if self.action == "HOLD":
            return self
        missing = [
            name
            for name in ("entry", "stop_loss", "take_profit_conservative", "take_profit_aggressive")
            if getattr(self, name) is None
        ]
        if missing:
            raise ValueError(f"{self.action} needs {', '.join(missing)}")
        entry, stop = self.entry, self.stop_loss
        conservative, aggressive = self.take_profit_conservative, self.take_profit_aggressive
        if self.action == "BUY":
            if not stop < entry:
                raise ValueError(f"BUY stop_loss {stop:g} must be below entry {entry:g}")
            if not entry < conservative <= aggressive:
                raise ValueError(
                    f"BUY needs entry {entry:g} < take_profit_conservative {conservative:g} "
                    f"<= take_profit_aggressive {aggressive:g}"
                )
        else:
            if not stop > entry:
                raise ValueError(f"SELL stop_loss {stop:g} must be above entry {entry:g}")
            if not entry > conservative >= aggressive:
                raise ValueError(
                    f"SELL needs entry {entry:g} > take_profit_conservative {conservative:g} "
                    f">= take_profit_aggressive {aggressive:g}"
                )
        return self


def validation_message(exc: ValidationError) -> str:
    """One line per problem, each naming the field: what a user and the run page can read."""
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "answer"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


def hold(reason: str, *, alignment: Alignment = "single") -> Decision:
    """The decision every failure becomes: no trade, the reason in the reasoning."""
    return Decision(
        action="HOLD",
        confidence=0.0,
        timeframe_alignment=alignment,
        key_levels=KeyLevels(),
        reasoning=f"No trade: {reason}"[:8000],
    )


def neutral(reason: str) -> Analysis:
    """The analysis a failed analysis step reports: no view, the reason in the summary."""
    return Analysis(
        trend="sideways",
        bias="neutral",
        confidence=0.0,
        key_levels=KeyLevels(),
        summary=f"No analysis: {reason}"[:4000],
    )
