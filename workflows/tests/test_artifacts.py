"""The artifact store, the same tests against both backends.

The MinIO backend runs for real against moto's standalone S3 server, started once per test
session on a free loopback port; each test gets its own bucket (as each gets its own folder).
"""

import hashlib
import pathlib
import re
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
from minio import Minio

from workflows.artifacts import store as artifacts
from workflows.artifacts.store import artifact_get, artifact_put, artifact_url
from workflows.errors import StepError, TransientStepError
from workflows.tests.s3 import use_minio

# Enough of a PNG to look like one: signature, IHDR chunk, then bytes of no meaning.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40
PUBLIC_ENDPOINT = "files.example.com:9443"

BACKENDS = ["filesystem", "minio"]


def raw_client(settings) -> Minio:
    """A client of the test's own, to look at the server behind the store's back."""
    return Minio(
        settings.MINIO_ENDPOINT,
        access_key=settings.MINIO_ACCESS_KEY,
        secret_key=settings.MINIO_SECRET_KEY,
        secure=False,
        region=settings.MINIO_REGION,
    )


@pytest.fixture(params=BACKENDS)
def backend(request, settings) -> str:
    if request.param == "minio":
        use_minio(settings, request.getfixturevalue("s3_endpoint"))
    else:
        settings.ARTIFACT_STORE = "filesystem"
    return request.param


@pytest.fixture
def uploads(backend, settings, monkeypatch) -> list[str]:
    """Every write the backend makes to its storage: object names or file paths."""
    writes: list[str] = []
    if backend == "minio":
        real_put = Minio.put_object

        def put_object(self, bucket_name, object_name, *args, **kwargs):
            writes.append(object_name)
            return real_put(self, bucket_name, object_name, *args, **kwargs)

        monkeypatch.setattr(Minio, "put_object", put_object)
    else:
        real_write = pathlib.Path.write_bytes

        def write_bytes(self, data):
            if pathlib.Path(settings.ARTIFACTS_DIR) in self.parents:
                writes.append(str(self))
            return real_write(self, data)

        monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    return writes


def container_exists(backend: str, settings) -> bool:
    if backend == "minio":
        return raw_client(settings).bucket_exists(settings.MINIO_BUCKET)
    return pathlib.Path(settings.ARTIFACTS_DIR).is_dir()


# The same tests for both backends


def test_round_trip_of_png_bytes(backend):
    key = artifact_put(data=PNG, kind="charts", ext="png")
    assert key == f"charts/{hashlib.sha256(PNG).hexdigest()}.png"
    assert artifact_get(key=key) == PNG


def test_same_bytes_same_key_and_no_second_upload(backend, uploads):
    first = artifact_put(data=PNG, kind="charts", ext="png")
    second = artifact_put(data=PNG, kind="charts", ext="png")
    assert first == second
    assert len(uploads) == 1
    other = artifact_put(data=PNG + b"x", kind="charts", ext="png")
    assert other != first
    assert len(uploads) == 2
    assert artifact_get(key=first) == PNG


def test_missing_key_is_a_step_error_naming_the_key(backend):
    artifact_put(data=b"something else", kind="charts", ext="png")  # the store exists
    key = f"charts/{'0' * 64}.png"
    with pytest.raises(StepError, match=re.escape(key)) as caught:
        artifact_get(key=key)
    assert not isinstance(caught.value, TransientStepError)  # retrying would not help


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        f"charts/../{'0' * 64}.png",
        f"/charts/{'0' * 64}.png",
        f"Charts/{'0' * 64}.png",
        "charts/abc.png",
        f"charts/{'0' * 64}",
        f"charts/{'0' * 64}.png/x",
        f"charts/sub/{'0' * 64}.png",
        "",
    ],
)
def test_malformed_key_is_a_step_error(backend, key):
    with pytest.raises(StepError, match="is not an artifact key"):
        artifact_get(key=key)
    with pytest.raises(StepError, match="is not an artifact key"):
        artifact_url(key=key)


def test_bad_kind_or_ext_is_refused_on_put(backend):
    with pytest.raises(StepError, match="is not an artifact key"):
        artifact_put(data=PNG, kind="../charts", ext="png")
    with pytest.raises(StepError, match="is not an artifact key"):
        artifact_put(data=PNG, kind="charts", ext="png/x")


def test_store_created_when_missing(backend, settings):
    assert not container_exists(backend, settings)
    key = artifact_put(data=PNG, kind="charts", ext="png")
    assert container_exists(backend, settings)
    assert artifact_get(key=key) == PNG


def test_stream_reads_the_same_bytes(backend):
    key = artifact_put(data=PNG, kind="charts", ext="png")
    with artifacts.artifact_open(key=key) as stream:
        assert stream.read() == PNG


def test_url_only_for_minio(backend, settings):
    key = artifact_put(data=PNG, kind="charts", ext="png")
    url = artifact_url(key=key)
    if backend == "filesystem":
        assert url is None  # the app streams the file itself
    else:
        assert urlsplit(url).path == f"/{settings.MINIO_BUCKET}/{key}"


# MinIO only


@pytest.fixture
def minio_store(settings, s3_endpoint) -> None:
    use_minio(settings, s3_endpoint)


def test_minio_stores_the_content_type(minio_store, settings):
    for data, ext, expected in [
        (PNG, "png", "image/png"),
        (b"{}", "json", "application/json"),
        (b"a,b\n", "csv", "text/csv"),
    ]:
        key = artifact_put(data=data, kind="things", ext=ext)
        assert raw_client(settings).stat_object(settings.MINIO_BUCKET, key).content_type == expected


def test_presigned_url_is_signed_for_the_public_endpoint(minio_store, settings):
    settings.MINIO_PUBLIC_ENDPOINT = PUBLIC_ENDPOINT
    settings.ARTIFACT_URL_TTL_S = 600
    key = artifact_put(data=PNG, kind="charts", ext="png")  # stored through MINIO_ENDPOINT
    url = urlsplit(artifact_url(key=key))
    assert url.scheme == "http"
    assert url.netloc == PUBLIC_ENDPOINT
    assert url.path == f"/{settings.MINIO_BUCKET}/{key}"
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["600"]
    assert query["X-Amz-Signature"][0]
    assert query["X-Amz-Credential"][0].startswith("testing/")


def test_presigned_url_never_holds_the_secret(minio_store, settings):
    settings.MINIO_SECRET_KEY = "distinct-secret-value-42"
    url = artifact_url(key=f"charts/{'0' * 64}.png")
    assert "X-Amz-Signature=" in url
    assert "distinct-secret-value-42" not in url


def test_public_endpoint_with_a_scheme_sets_https(minio_store, settings):
    settings.MINIO_PUBLIC_ENDPOINT = f"https://{PUBLIC_ENDPOINT}"
    url = urlsplit(artifact_url(key=f"charts/{'0' * 64}.png"))
    assert (url.scheme, url.netloc) == ("https", PUBLIC_ENDPOINT)


def test_presigned_url_needs_no_network(minio_store, settings):
    # Nothing listens on the public endpoint, and signing never asks the server anything.
    settings.MINIO_ENDPOINT = "127.0.0.1:9"
    settings.MINIO_PUBLIC_ENDPOINT = PUBLIC_ENDPOINT
    assert urlsplit(artifact_url(key=f"charts/{'0' * 64}.png")).netloc == PUBLIC_ENDPOINT


def test_presigned_url_is_stable_within_its_window(minio_store):
    key = f"charts/{'0' * 64}.png"
    assert artifact_url(key=key) == artifact_url(key=key)  # browsers can cache the image


def test_presigned_url_for_the_real_endpoint_downloads_the_bytes(minio_store):
    key = artifact_put(data=PNG, kind="charts", ext="png")
    with urllib.request.urlopen(artifact_url(key=key), timeout=10) as response:  # noqa: S310 - our own loopback server
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert response.read() == PNG


def test_bucket_created_by_someone_else_meanwhile_is_fine(minio_store, settings, monkeypatch):
    # Outside us-east-1, S3 answers BucketAlreadyOwnedByYou to a second create: another
    # process won the race between our existence check and our create.
    settings.MINIO_REGION = "eu-west-1"
    raw_client(settings).make_bucket(settings.MINIO_BUCKET, location="eu-west-1")
    monkeypatch.setattr(Minio, "bucket_exists", lambda self, bucket_name: False)
    key = artifact_put(data=PNG, kind="charts", ext="png")
    assert artifact_get(key=key) == PNG


def test_unreachable_store_is_transient(minio_store, settings):
    settings.MINIO_ENDPOINT = "127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(TransientStepError, match=re.escape("127.0.0.1:9")):
        artifact_put(data=PNG, kind="charts", ext="png")
    with pytest.raises(TransientStepError, match=re.escape(f"charts/{'0' * 64}.png")):
        artifact_get(key=f"charts/{'0' * 64}.png")


def test_wrong_credentials_are_not_retried(minio_store, settings, monkeypatch):
    from minio.error import S3Error

    def denied(self, *args, **kwargs):
        raise S3Error(None, "AccessDenied", "Access Denied.", "/", "req", "host")

    monkeypatch.setattr(Minio, "get_object", denied)
    with pytest.raises(StepError, match="AccessDenied") as caught:
        artifact_get(key=f"charts/{'0' * 64}.png")
    assert not isinstance(caught.value, TransientStepError)


def test_unknown_store_setting_is_a_clear_error(settings):
    settings.ARTIFACT_STORE = "s3"
    with pytest.raises(StepError, match='ARTIFACT_STORE is "s3"'):
        artifact_put(data=PNG, kind="charts", ext="png")
