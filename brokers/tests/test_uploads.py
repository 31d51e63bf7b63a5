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


# Splits: a split column is honoured, a move that looks like an unadjusted split is a warning

SPLIT_HEADER = "timestamp,open,high,low,close,volume,split_ratio\n"


def _split_file(split: str, *, header: str = SPLIT_HEADER) -> bytes:
    """Three days at about 400, then a 4:1 split on Monday 2020-08-31: prices about 100."""
    return _rows(
        "2020-08-26,400,420,396,408,1000,",
        "2020-08-27,408,412,400,404,2000,1",
        "2020-08-28,404,416,400,412,1500,0",
        f"2020-08-31,104,108,102,106,8000,{split}",
        "2020-09-01,106,110,105,108,7000,",
        header=header,
    )


def _stored(up: UploadedBars) -> list[list[float]]:
    return bars_load({"artifact": up.artifact}).to_numpy().tolist()


def test_a_split_column_adjusts_the_bars_before_the_split(user):
    up = upload(user, _split_file("4"))
    # By hand: before 2020-08-31 prices / 4 and volume * 4; from the split on, as uploaded.
    assert _stored(up) == [
        [100, 105, 99, 102, 4000],
        [102, 103, 100, 101, 8000],
        [101, 104, 100, 103, 6000],
        [104, 108, 102, 106, 8000],
        [106, 110, 105, 108, 7000],
    ]
    assert up.splits == [
        {
            "date": "2020-08-31",
            "ratio": 4.0,
            "label": "4:1",
            "bars_adjusted": 3,
            "message": "2020-08-31: 4:1 split applied to the 3 bars before it",
        }
    ]
    assert up.warnings == []
    up.refresh_from_db()
    assert up.splits[0]["bars_adjusted"] == 3


@pytest.mark.parametrize(
    ("header", "split"),
    [
        ("timestamp,open,high,low,close,volume,Stock Splits\n", "4.0"),  # as yfinance writes it
        ("timestamp,open,high,low,close,volume,split\n", "4:1"),
        ("Timestamp,Open,High,Low,Close,Volume,Splits\n", "4/1"),
        ("timestamp,open,high,low,close,volume,stock-splits\n", " 4 : 1 "),
    ],
)
def test_split_column_names_and_text_forms(user, header, split):
    up = upload(user, _split_file(split, header=header))
    assert _stored(up)[0] == [100, 105, 99, 102, 4000]
    assert [s["label"] for s in up.splits] == ["4:1"]


def test_a_reverse_split_as_text(user):
    data = _rows(
        "2024-01-02,2.0,2.2,1.9,2.1,50000,",
        "2024-01-03,2.1,2.3,2.0,2.2,60000,",
        "2024-01-04,21,23,20,22,5000,1:10",
        header=SPLIT_HEADER,
    )
    up = upload(user, data)
    stored = _stored(up)
    # Before a 1-for-10 split prices * 10 and volume / 10.
    assert stored[0] == pytest.approx([20, 22, 19, 21, 5000], rel=1e-12)
    assert stored[1] == pytest.approx([21, 23, 20, 22, 6000], rel=1e-12)
    assert stored[2] == [21, 23, 20, 22, 5000]
    assert [(s["ratio"], s["label"], s["message"]) for s in up.splits] == [
        (0.1, "1:10", "2024-01-04: 1:10 reverse split applied to the 2 bars before it")
    ]


def test_two_splits_are_both_applied_and_a_split_on_the_first_bar_adjusts_nothing(user):
    data = _rows(
        "2024-01-02,800,800,800,800,1,2",
        "2024-01-03,400,400,400,400,2,2",
        "2024-01-04,400,400,400,400,2,1",
        "2024-01-05,200,200,200,200,4,2",
        header=SPLIT_HEADER,
    )
    up = upload(user, data)
    # The first bar is before both splits: / 2 / 2; the next two before the second only.
    assert [row[3] for row in _stored(up)] == [200, 200, 200, 200]
    assert [row[4] for row in _stored(up)] == [4, 4, 4, 4]
    assert up.warnings == []
    assert [s["message"] for s in up.splits] == [
        "2024-01-02: 2:1 split applied to no bar before it",
        "2024-01-03: 2:1 split applied to the 1 bar before it",
        "2024-01-05: 2:1 split applied to the 3 bars before it",
    ]


def test_api_answer_lists_the_splits_and_the_page_says_so(client, user):
    client.force_login(user)
    response = client.post(
        reverse("api-market-data-uploads"),
        {"symbol": "acme", "bar": "1d", "file": SimpleUploadedFile("a.csv", _split_file("4:1"))},
    )
    assert response.status_code == 201, response.content
    assert [s["message"] for s in response.json()["splits"]] == [
        "2020-08-31: 4:1 split applied to the 3 bars before it"
    ]
    assert response.json()["warnings"] == []
    response = client.post(
        reverse("market-data-upload"),
        {"symbol": "acme", "bar": "1d", "file": SimpleUploadedFile("a.csv", _split_file("4"))},
        follow=True,
    )
    page = response.content.decode()
    assert "Split-adjusted: 2020-08-31: 4:1 split applied to the 3 bars before it." in page
    # And in the list of uploads.
    assert page.count("2020-08-31: 4:1 split applied to the 3 bars before it") == 2


@pytest.mark.parametrize("value", ["abc", "-2", "0:1", "2:0", "nan", "inf", "5000", "2:1:1", "x/2"])
def test_an_invalid_split_value_names_the_line_and_the_column(user, settings, value):
    before = artifacts(settings)
    with pytest.raises(ApplicationError) as info:
        upload(user, _split_file(value))
    assert info.value.message.startswith(
        'acme.csv was rejected and nothing was imported: invalid value in split column "split_ratio" '
    )
    assert info.value.message.endswith(" on line 5.")
    assert UploadedBars.objects.count() == 0 and artifacts(settings) == before


def test_api_invalid_split_value_is_a_400_and_nothing_is_saved(client, user, settings):
    client.force_login(user)
    before = artifacts(settings)
    bad = _split_file("4").replace(b"2000,1\n", b"2000,two\n")
    response = client.post(
        reverse("api-market-data-uploads"), {"symbol": "acme", "bar": "1d", "file": SimpleUploadedFile("s.csv", bad)}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith(
        's.csv was rejected and nothing was imported: invalid value in split column "split_ratio"'
    )
    assert body["detail"].endswith(" on line 3.")
    assert body["errors"] == [
        {
            "line": 3,
            "problem": 'invalid value in split column "split_ratio" (expected a ratio such as 2, 0.5, 4:1 or 1:10 '
            "on a split's date; 1, 0 or empty on other days)",
            "detail": '"two"',
        }
    ]
    assert UploadedBars.objects.count() == 0 and artifacts(settings) == before


def test_two_split_columns_are_refused(user):
    data = _split_file("4", header="timestamp,open,high,low,close,volume,Stock Splits\n").replace(b"\n", b",1\n")
    data = data.replace(b"Stock Splits,1\n", b"Stock Splits,split\n", 1)
    with pytest.raises(
        ApplicationError, match=r'the header \(line 1\) has more than one split column \("Stock Splits", "split"\)'
    ):
        upload(user, data)


def test_a_split_the_prices_do_not_show_is_refused(user, settings):
    # The prices are adjusted already (yfinance's default) but the file still declares the split:
    # adjusting again would make a 4x fall of a flat line.
    data = _rows(
        "2020-08-27,102,103,100,101,8000,",
        "2020-08-28,101,104,100,103,6000,",
        "2020-08-31,104,108,102,106,8000,4",
        header=SPLIT_HEADER,
    )
    with pytest.raises(ApplicationError) as info:
        upload(user, data)
    assert info.value.message == (
        'acme.csv was rejected and nothing was imported: split in column "split_ratio" that the prices do not show '
        "(the bars look split-adjusted already, or the split is on another date) on line 4."
    )
    assert info.value.extra["errors"][0]["detail"] == (
        "4:1 split on 2020-08-31, but the price went from 103 (close on 2020-08-28) to 104 (open)"
    )
    assert UploadedBars.objects.count() == 0
    # The same split a day late (on the day after the fall) is refused too.
    late = _split_file("").replace(b"2020-09-01,106,110,105,108,7000,", b"2020-09-01,106,110,105,108,7000,4")
    with pytest.raises(ApplicationError, match=r"that the prices do not show .* on line 6\."):
        upload(user, late)


def test_an_intraday_upload_with_a_split_day(user):
    data = _rows(
        "2024-03-04T09:30:00-05:00,400,404,396,400,100,",
        "2024-03-04T15:59:00-05:00,400,408,400,404,200,",
        # The ratio on every bar of the split day is the same split, once.
        "2024-03-05T09:30:00-05:00,101,102,100,101,800,4",
        "2024-03-05T09:31:00-05:00,101,103,101,102,900,4",
        header=SPLIT_HEADER,
    )
    up = upload(user, data, bar="1m")
    assert _stored(up) == [
        [100, 101, 99, 100, 400],
        [100, 102, 100, 101, 800],
        [101, 102, 100, 101, 800],
        [101, 103, 101, 102, 900],
    ]
    assert [s["message"] for s in up.splits] == ["2024-03-05: 4:1 split applied to the 2 bars before it"]
    assert up.warnings == []
    # Two different ratios on one day are refused.
    with pytest.raises(ApplicationError, match=r'two different splits on one day in column "split_ratio" on line 5\.'):
        upload(user, data.replace(b"900,4", b"900,2"), bar="1m")


def _moves(*closes: float) -> bytes:
    """One daily bar per close, each opening at its close (so the overnight move is close to close)."""
    days = pd.bdate_range("2024-01-02", periods=len(closes))
    return _rows(*[f"{d:%Y-%m-%d},{c},{c},{c},{c},100" for d, c in zip(days, closes, strict=True)])


def test_a_move_like_an_unadjusted_split_is_a_stored_warning(user):
    up = upload(user, _moves(200, 202, 101, 102))
    assert up.warnings == [
        {
            "date": "2024-01-04",
            "ratio": "2:1",
            "message": "2024-01-04: the price fell from 202 (close on 2024-01-03) to 101 (open), the move of an "
            "unadjusted 2:1 split. If it was a split, add a split_ratio column holding 2 on 2024-01-04 (1 or empty "
            "on other days), or upload split-adjusted bars; if the move was real, nothing is wrong.",
        }
    ]
    up.refresh_from_db()
    assert [w["ratio"] for w in up.warnings] == ["2:1"]
    # The bars are imported as they are: a warning refuses nothing.
    assert [row[3] for row in _stored(up)] == [200, 202, 101, 102]


@pytest.mark.parametrize(
    ("closes", "ratio"),
    [
        ((100, 88, 90), None),  # a genuine 12% fall
        ((100, 55, 56), None),  # 45%: not a split
        ((100, 51.5, 52), "2:1"),  # 2 within 3%
        ((100, 33.9, 34), "3:1"),
        ((100, 14.3, 14), "7:1"),  # 7:1 shows as an 86% fall
        ((100, 196, 195), "1:2"),  # a reverse split's rise
        ((100, 1000, 990), "1:10"),
    ],
)
def test_which_moves_look_like_a_split(user, closes, ratio):
    up = upload(user, _moves(*closes))
    assert [w["ratio"] for w in up.warnings] == ([ratio] if ratio else [])


def test_a_daily_split_inside_the_day_is_found_close_to_close(user):
    # Opened near the old price, closed at half: the overnight move is small, the day's is 2:1.
    data = _rows("2024-01-02,100,101,99,100,10", "2024-01-03,99,99,49,50,10", "2024-01-04,50,51,49,50,10")
    up = upload(user, data)
    assert [(w["date"], w["ratio"]) for w in up.warnings] == [("2024-01-03", "2:1")]
    assert "to 50 (close)" in up.warnings[0]["message"]


def test_warnings_are_listed_up_to_a_limit(user):
    closes = [100 if i % 2 == 0 else 50 for i in range(30)]
    up = upload(user, _moves(*closes))
    assert len(up.warnings) == 21
    assert up.warnings[-1] == {"date": None, "ratio": None, "message": "and 9 more moves like these after 2024-01-30"}


def test_api_and_page_show_the_warning(client, user):
    client.force_login(user)
    response = client.post(
        reverse("api-market-data-uploads"),
        {"symbol": "acme", "bar": "1d", "file": SimpleUploadedFile("a.csv", _moves(200, 202, 101, 102))},
    )
    assert response.status_code == 201
    assert [(w["date"], w["ratio"]) for w in response.json()["warnings"]] == [("2024-01-04", "2:1")]
    response = client.post(
        reverse("market-data-upload"),
        {"symbol": "acme", "bar": "1d", "file": SimpleUploadedFile("a.csv", _moves(200, 202, 101, 102))},
        follow=True,
    )
    page = response.content.decode()
    assert "Possible unadjusted split: 2024-01-04: the price fell from 202" in page
    assert page.count("unadjusted 2:1 split") == 2  # the message after the upload, and the list


def test_fetch_bars_logs_the_upload_warning_and_splits(user):
    upload(user, _moves(200, 202, 101, 102, 103))
    upload(user, _split_file("4"), symbol="SPLIT")
    fetch = FetchBars()

    def logs(symbol: str, **params) -> list[tuple[str, str]]:
        ctx = ctx_for(run_of(user))
        fetch.run(ctx, {}, FetchBars.Params.model_validate({"symbol": symbol, "source": "upload", **params}))
        return [(line["level"], line["message"]) for line in ctx.logs[1:]]

    assert logs("ACME", period="max") == [
        (
            "warning",
            "Your ACME 1d upload (acme.csv) may hold an unadjusted split: 2024-01-04: the price fell from 202 (close "
            "on 2024-01-03) to 101 (open), the move of an unadjusted 2:1 split. If it was a split, add a split_ratio "
            "column holding 2 on 2024-01-04 (1 or empty on other days), or upload split-adjusted bars; if the move "
            "was real, nothing is wrong.",
        )
    ]
    # Bars from the day of the move on do not hold it: nothing to say.
    assert logs("ACME", period="3d", end="2024-01-08") == []
    assert logs("SPLIT", period="max") == [
        (
            "info",
            "Your SPLIT 1d upload (acme.csv) is split-adjusted: 2020-08-31: 4:1 split applied to the 3 bars before it",
        )
    ]


def test_an_intraday_upload_without_a_split_column_warns_of_an_overnight_gap(user):
    data = _rows(
        "2024-03-04T09:30:00-05:00,400,404,396,400,100",
        "2024-03-04T15:59:00-05:00,400,408,400,404,200",
        "2024-03-05T09:30:00-05:00,101,102,100,101,800",
        "2024-03-05T09:31:00-05:00,101,103,50,51,900",  # a fall inside a session is no split
    )
    up = upload(user, data, bar="1m")
    assert [(w["date"], w["ratio"]) for w in up.warnings] == [("2024-03-05", "4:1")]
