"""CSV uploads of a user's own bars: validation naming the rows, nothing half-imported, privacy,
the upload source behind market.fetch_bars, and the page and API."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from brokers.marketdata.bars import COLUMNS, NEW_YORK, bars_load, market_source
from brokers.marketdata.steps import FetchBars
from brokers.marketdata.uploads import UploadedSource, bars_upload
from brokers.models import UploadedBars
from workflows.engine import StepContext
from workflows.errors import ApplicationError, StepError
from workflows.models import Run, Workflow, WorkflowVersion

pytestmark = pytest.mark.django_db

HEADER = "timestamp,open,high,low,close,volume\n"


def daily_csv(n: int = 30, *, start: str = "2024-01-02", header: str = HEADER) -> bytes:
    days = pd.bdate_range(start=start, periods=n)
    lines = [f"{d:%Y-%m-%d},{100 + i},{102 + i},{99 + i},{101 + i},{1000 + i}" for i, d in enumerate(days)]
    return (header + "\n".join(lines) + "\n").encode()


def minute_csv(n: int = 120) -> bytes:
    start = pd.Timestamp("2024-03-04 09:30", tz=NEW_YORK)
    lines = [
        f"{(start + pd.Timedelta(minutes=i)).isoformat()},{o},{o + 0.2},{o - 0.1},{o + 0.1},50"
        for i, o in ((i, 10 + i / 100) for i in range(n))
    ]
    return (HEADER + "\n".join(lines) + "\n").encode()


def artifacts(settings) -> list[Path]:
    root = Path(settings.ARTIFACTS_DIR)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def upload(user, data: bytes, *, symbol="ACME", bar="1d", filename="acme.csv") -> UploadedBars:
    return bars_upload(owner=user, symbol=symbol, bar=bar, filename=filename, data=data)


def run_of(user, symbol="ACME") -> Run:
    workflow = Workflow.objects.create(owner=user, name="w")
    version = WorkflowVersion.objects.create(workflow=workflow, number=1, graph={"schema": 1, "nodes": [], "edges": []})
    return Run.objects.create(workflow=workflow, version=version, symbol=symbol)


def ctx_for(run: Run) -> StepContext:
    return StepContext(
        run_id=run.id,
        step_run_id=0,
        node_id="fetch",
        symbol=run.symbol,
        run_params={},
        attempt=1,
        idempotency_key="k",
        owner_id=run.workflow.owner_id,
    )


# A good file


def test_good_daily_file_is_stored_normalised(user, settings):
    data = daily_csv(30, header="Timestamp,OPEN,High,Low,Close,Volume,Adj Close\n").replace(b"\n", b",1\n")
    data = data.replace(b"Adj Close,1\n", b"Adj Close\n", 1)
    up = upload(user, data, symbol=" acme ")
    assert (up.symbol, up.bar, up.rows, up.first, up.last) == ("ACME", "1d", 30, "2024-01-02", "2024-02-12")
    assert up.original_filename == "acme.csv"
    df = bars_load({"artifact": up.artifact})
    assert list(df.columns) == COLUMNS and df.index.tz is None and len(df) == 30
    assert [p.name for p in artifacts(settings)] == [up.artifact.split("/")[1]]


def test_good_intraday_file_is_in_new_york_time(user):
    data = minute_csv(3).replace(b"-05:00", b"-05:00", 1)
    # Mixed offsets for the same instants are fine: 14:32Z is 09:32 New York.
    data = data.replace(b"2024-03-04T09:32:00-05:00", b"2024-03-04T14:32:00+00:00")
    up = upload(user, data, bar="1m")
    assert (up.rows, up.first, up.last) == (3, "2024-03-04T09:30:00-05:00", "2024-03-04T09:32:00-05:00")


def test_replacing_an_upload(user, settings):
    first = upload(user, daily_csv(30))
    second = upload(user, daily_csv(10, start="2024-05-01"), filename="new.csv")
    assert UploadedBars.objects.count() == 1
    assert second.pk == first.pk
    second.refresh_from_db()
    assert (second.rows, second.first, second.original_filename) == (10, "2024-05-01", "new.csv")
    # Another bar size is another upload.
    upload(user, minute_csv(), bar="1m")
    assert UploadedBars.objects.filter(owner=user, symbol="ACME").count() == 2


# Bad files: each names its lines, and nothing is written


def _rows(*rows: str, header: str = HEADER) -> bytes:
    return (header + "\n".join(rows) + "\n").encode()


BAD_FILES = [
    pytest.param(
        _rows("2024-01-02,10,11,9,10.5,100", "2024-01-03,10,11,9,10.5,100", "2024-01-03,10,11,9,10.5,100"),
        "1d",
        r"duplicate timestamp on line 4\.",
        id="duplicate",
    ),
    pytest.param(
        _rows("2024-01-03,10,11,9,10.5,100", "2024-01-02,10,11,9,10.5,100", "2024-01-04,10,11,9,10.5,100"),
        "1d",
        r"timestamps not in ascending order on line 3\.",
        id="order",
    ),
    pytest.param(
        _rows("2024-01-02,10,11,9,10.5,100", "2024-01-03,0,11,9,10.5,100", "2024-01-04,10,11,-9,10.5,100"),
        "1d",
        r"non-positive price on lines 3, 4",
        id="non-positive",
    ),
    pytest.param(
        _rows("2024-01-02,10,11,9,10.5,-1"),
        "1d",
        r"negative volume on line 2\.",
        id="negative-volume",
    ),
    pytest.param(
        _rows("2024-01-02,10,11,9,10.5,100", "2024-01-03,10,10.2,9,10.5,100"),
        "1d",
        r"high below open or close on line 3\.",
        id="high-below-close",
    ),
    pytest.param(
        _rows("2024-01-02,10,11,10.2,10.5,100"),
        "1d",
        r"low above open or close on line 2\.",
        id="low-above-open",
    ),
    pytest.param(
        _rows("2024-01-02,10,9,11,10,100"),
        "1d",
        r"high below low on line 2;",
        id="high-below-low",
    ),
    pytest.param(
        _rows(
            "2024-01-02,10,11,9,10.5,100",
            "2024-01-03,10,,9,10.5,100",
            "2024-01-04,10,11,9,NaN,100",
            "2024-01-05,10,11,9",
        ),
        "1d",
        r"blank value on lines 3, 4, 5\.",
        id="blanks-nan-short-row",
    ),
    pytest.param(
        _rows("2024-01-02,10,11,9,ten,100"),
        "1d",
        r"not a number on line 2\.",
        id="not-a-number",
    ),
    pytest.param(
        _rows("02/01/2024,10,11,9,10.5,100", "2024-01-03T00:00:00,10,11,9,10.5,100", "2024-02-30,10,11,9,10.5,100"),
        "1d",
        r"timestamp is not a date YYYY-MM-DD on lines 2, 3, 4\.",
        id="daily-timestamp",
    ),
    pytest.param(
        _rows(
            "2024-03-04T09:30:00,10,11,9,10.5,100",
            "2024-03-04,10,11,9,10.5,100",
            "2024-03-04T09:32:00-05:00,10,11,9,10.5,100",
        ),
        "1m",
        r"timestamp is not an ISO date and time with a UTC offset, e\.g\. 2024-01-02T09:30:00-05:00 on lines 2, 3\.",
        id="intraday-timestamp-without-offset",
    ),
    pytest.param(
        _rows(*[f"2024-01-{d:02d},10,11,9,12,100" for d in range(1, 16)]),
        "1d",
        r"high below open or close on lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 5 more\.",
        id="more-than-ten",
    ),
    pytest.param(
        b"date,open,high,low,close\n2024-01-02,10,11,9,10.5\n",
        "1d",
        r"the header \(line 1\) has no column timestamp, volume",
        id="header",
    ),
    pytest.param(b"", "1d", r"is empty", id="empty"),
    pytest.param(HEADER.encode(), "1d", r"has a header but no bars", id="no-rows"),
    pytest.param(
        HEADER.encode() + b"2024-01-02,10,11,9,10.5,100\n\xff\xfe\n",
        "1d",
        r"not UTF-8 text \(first bad byte on line 3\)",
        id="encoding",
    ),
]


@pytest.mark.parametrize(("data", "bar", "message"), BAD_FILES)
def test_bad_file_is_rejected_naming_the_rows_and_nothing_is_written(user, settings, data, bar, message):
    before = artifacts(settings)
    with pytest.raises(ApplicationError, match=message) as info:
        upload(user, data, bar=bar)
    assert UploadedBars.objects.count() == 0
    assert artifacts(settings) == before
    assert "acme.csv" in info.value.message


def test_rejection_lists_every_kind_with_details(user):
    data = _rows("2024-01-02,10,11,9,10.5,-5", "2024-01-02,10,9,11,10,100")
    with pytest.raises(ApplicationError) as info:
        upload(user, data)
    message = info.value.message
    assert message.startswith("acme.csv was rejected and nothing was imported: negative volume on line 2;")
    assert "duplicate timestamp on line 3" in message and "high below low on line 3" in message
    assert {"line": 3, "problem": "duplicate timestamp", "detail": "2024-01-02 is on line 2 too"} in info.value.extra[
        "errors"
    ]


def test_a_bad_file_leaves_the_previous_upload_untouched(user, settings):
    good = upload(user, daily_csv(30))
    stored = artifacts(settings)
    with pytest.raises(ApplicationError):
        upload(user, _rows("2024-01-02,10,11,9,10.5,-1"))
    good_now = UploadedBars.objects.get()
    assert (good_now.rows, good_now.artifact) == (30, good.artifact)
    assert artifacts(settings) == stored


def test_too_large_file(user, settings):
    settings.MARKET_UPLOAD_MAX_MB = 0
    with pytest.raises(ApplicationError, match="the largest upload is 0 MB"):
        upload(user, daily_csv(5))
    assert UploadedBars.objects.count() == 0


@pytest.mark.parametrize(
    ("symbol", "bar", "message"),
    [("", "1d", "not a valid symbol"), ("AC ME", "1d", "not a valid symbol"), ("ACME", "2d", 'Unsupported bar "2d"')],
)
def test_bad_symbol_or_bar(user, symbol, bar, message):
    with pytest.raises(ApplicationError, match=message):
        upload(user, daily_csv(5), symbol=symbol, bar=bar)


# The upload source


def test_upload_source_is_registered():
    source = market_source("upload", owner_id=7)
    assert isinstance(source, UploadedSource) and source.owner_id == 7


def test_upload_source_needs_an_owner():
    with pytest.raises(StepError, match="private to their owner"):
        UploadedSource().bars(symbol="ACME", bar="1d", period="1y")


def test_upload_source_serves_the_owner_periods_end_and_resampling(user):
    upload(user, daily_csv(60))
    src = UploadedSource(owner_id=user.id)
    assert src.owner_id == user.id
    df = src.bars(symbol="acme", bar="1d", period="max")
    assert len(df) == 60 and df.index.tz is None
    df = src.bars(symbol="ACME", bar="1d", period="2w", end=date(2024, 2, 16))
    assert df.index[-1] == pd.Timestamp("2024-02-16") and df.index[0] == pd.Timestamp("2024-02-05")
    weekly = src.bars(symbol="ACME", bar="1w", period="max")
    # Labelled with each week's first session: Tuesday 2 January, then Mondays.
    assert weekly.index[0] == pd.Timestamp("2024-01-02") and (weekly.index[1:].day_of_week == 0).all()
    assert weekly["volume"].sum() == df_volume(60)
    with pytest.raises(StepError, match=r"No uploaded ACME 1d bars in the 1m up to 2020-01-01"):
        src.bars(symbol="ACME", bar="1d", period="1m", end=date(2020, 1, 1))
    with pytest.raises(StepError, match=r"No uploaded ACME bars at 1h or finer \(you have uploaded ACME bars: 1d\)"):
        src.bars(symbol="ACME", bar="1h", period="1y")


def df_volume(n: int) -> float:
    return float(sum(1000 + i for i in range(n)))


def test_upload_source_resamples_minutes(user):
    upload(user, minute_csv(120), bar="1m")
    src = UploadedSource(owner_id=user.id)
    hourly = src.bars(symbol="ACME", bar="1h", period="1d")
    assert list(hourly.index) == [
        pd.Timestamp("2024-03-04 09:30", tz=NEW_YORK),
        pd.Timestamp("2024-03-04 10:30", tz=NEW_YORK),
    ]
    daily = src.bars(symbol="ACME", bar="1d", period="1d")
    assert len(daily) == 1 and daily["volume"].iloc[0] == 120 * 50


def test_another_user_cannot_use_your_upload(user, other_user):
    upload(user, daily_csv(30))
    with pytest.raises(StepError, match="No uploaded ACME bars"):
        UploadedSource(owner_id=other_user.id).bars(symbol="ACME", bar="1d", period="1y")


def test_a_good_upload_is_usable_by_fetch_bars_at_once(user, other_user):
    upload(user, daily_csv(30))
    params = FetchBars.Params.model_validate({"symbol": "acme", "period": "1y", "bar": "1d", "source": "upload"})
    out = FetchBars().run(ctx_for(run_of(user)), {}, params)["bars"]
    assert (out["symbol"], out["rows"], out["source"], out["last"]) == ("ACME", 30, "upload", "2024-02-12")
    with pytest.raises(StepError, match="No uploaded ACME bars"):
        FetchBars().run(ctx_for(run_of(other_user)), {}, params)


# Page


def test_page_lists_only_your_uploads(client, user, other_user):
    upload(user, daily_csv(30), symbol="MINE")
    upload(other_user, daily_csv(30), symbol="THEIRS")
    client.force_login(user)
    response = client.get(reverse("market-data-upload"))
    assert response.status_code == 200
    assert b"MINE" in response.content and b"THEIRS" not in response.content


def test_page_upload_and_error(client, user, settings):
    client.force_login(user)
    url = reverse("market-data-upload")
    response = client.post(url, {"symbol": "acme", "bar": "1d", "file": SimpleUploadedFile("a.csv", daily_csv(30))})
    assert response.status_code == 302
    assert UploadedBars.objects.get().rows == 30
    stored = artifacts(settings)
    bad = SimpleUploadedFile("bad.csv", _rows("2024-01-02,10,11,9,10.5,100", "2024-01-02,10,11,9,10.5,100"))
    response = client.post(url, {"symbol": "acme", "bar": "1d", "file": bad})
    assert response.status_code == 400
    assert "bad.csv was rejected and nothing was imported: duplicate timestamp on line 3." in response.content.decode()
    assert UploadedBars.objects.get().rows == 30 and artifacts(settings) == stored
    response = client.post(url, {"symbol": "acme", "bar": "1d"})
    assert response.status_code == 400 and b"Choose a CSV file" in response.content


def test_page_needs_login(client):
    response = client.get(reverse("market-data-upload"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# API


def test_api_upload_list_and_errors(client, user, other_user, settings):
    url = reverse("api-market-data-uploads")
    client.force_login(user)
    response = client.post(url, {"symbol": "acme", "bar": "1d", "file": SimpleUploadedFile("a.csv", daily_csv(30))})
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("symbol", "bar", "rows", "first", "last", "original_filename")} == {
        "symbol": "ACME",
        "bar": "1d",
        "rows": 30,
        "first": "2024-01-02",
        "last": "2024-02-12",
        "original_filename": "a.csv",
    }
    bad = SimpleUploadedFile("bad.csv", _rows("2024-01-02,10,11,9,10.5,-3"))
    response = client.post(url, {"symbol": "acme", "bar": "1d", "file": bad})
    assert response.status_code == 400
    assert response.json()["detail"] == "bad.csv was rejected and nothing was imported: negative volume on line 2."
    assert response.json()["errors"][0]["line"] == 2
    response = client.post(url, {"symbol": "acme", "bar": "3d", "file": SimpleUploadedFile("a.csv", daily_csv(3))})
    assert response.status_code == 400 and "bar" in response.json()
    assert [u["symbol"] for u in client.get(url).json()] == ["ACME"]

    client.force_login(other_user)
    assert client.get(url).json() == []


def test_api_needs_login(client):
    url = reverse("api-market-data-uploads")
    assert client.get(url).status_code == 403
    response = client.post(url, {"symbol": "acme", "bar": "1d", "file": SimpleUploadedFile("a.csv", daily_csv(3))})
    assert response.status_code == 403
    assert UploadedBars.objects.count() == 0


def test_admin_lists_uploads(client, staff_user, user):
    from django.contrib.auth.models import Permission

    upload(user, daily_csv(5))
    staff_user.user_permissions.add(Permission.objects.get(codename="view_uploadedbars"))
    client.force_login(staff_user)
    response = client.get(reverse("admin:brokers_uploadedbars_changelist"))
    assert response.status_code == 200 and b"ACME" in response.content


def test_problem_lines_are_listed_once_each_in_order():
    from brokers.marketdata.uploads import _Problems

    problems = _Problems()
    for line in (3, 3, 4, 7, 7, 7):
        problems.add(line, "high below low", "detail")
    assert problems.by_kind["high below low"] == [3, 4, 7]
