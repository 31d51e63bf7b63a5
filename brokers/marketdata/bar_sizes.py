"""Bar sizes: the one list of the bars a workflow can ask for, with their labels.

Kept free of pandas so models, forms and step schemas can import it cheaply."""

from typing import Literal, get_args

# Finest first: a resample may only go right.
Bar = Literal["1m", "5m", "15m", "1h", "1d", "1w"]
BARS: tuple[str, ...] = get_args(Bar)
BAR_LABELS = {"1m": "1-minute", "5m": "5-minute", "15m": "15-minute", "1h": "hourly", "1d": "daily", "1w": "weekly"}
# Intraday bars and their length in minutes; the others are whole sessions (a day, a week).
INTRADAY_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "1h": 60}
SESSION_BARS = tuple(bar for bar in BARS if bar not in INTRADAY_MINUTES)
BAR_CHOICES = [(bar, bar) for bar in BARS]
