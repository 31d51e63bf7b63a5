"""The artifact store: large step outputs (bars, charts) live here; outputs hold the key.

Keys are content-addressed (`<kind>/<sha256>.<ext>`), so writing the same bytes twice is free
and a key always means the same bytes. Two backends sit behind the same functions, chosen by
`settings.ARTIFACT_STORE` at each call:

- `filesystem` (the embedded default): files under `settings.ARTIFACTS_DIR`;
- `minio`: a bucket on MinIO or any S3-compatible server, through the `minio` SDK. The bucket
  is created when missing; browsers fetch objects through presigned URLs signed for
  `MINIO_PUBLIC_ENDPOINT` (see `artifact_url`).

A missing or malformed key is a `StepError` naming the key; a store that cannot be reached is
a `TransientStepError`, so the step is retried per its node's policy.
"""

import functools
import hashlib
import io
import os
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import urllib3
from django.conf import settings
from minio import Minio
from minio.error import MinioException, S3Error

from workflows.errors import StepError, TransientStepError

KEY = re.compile(r"^[a-z0-9_\-]+/[0-9a-f]{64}\.[a-z0-9]+$")

CONTENT_TYPES = {"png": "image/png", "json": "application/json", "csv": "text/csv"}
DEFAULT_CONTENT_TYPE = "application/octet-stream"

# S3 error codes that mean "try again later" rather than "this is wrong".
_S3_TRANSIENT = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "XMinioServerNotInitialized"}
_S3_MISSING = {"NoSuchKey", "NoSuchBucket", "ResourceNotFound"}


def key_check(key: str) -> str:
    """The key itself if it is well formed, else a StepError (never a path outside the store)."""
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise StepError(f'"{key}" is not an artifact key')
    return key


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(key.rsplit(".", 1)[-1], DEFAULT_CONTENT_TYPE)


def artifact_put(*, data: bytes, kind: str, ext: str) -> str:
    key = key_check(f"{kind}/{hashlib.sha256(data).hexdigest()}.{ext}")
    if _minio_selected():
        _minio_put(key, data)
    else:
        _fs_put(key, data)
    return key


def artifact_get(*, key: str) -> bytes:
    key_check(key)
    return _minio_get(key) if _minio_selected() else _fs_path_existing(key).read_bytes()


def artifact_open(*, key: str) -> BinaryIO:
    """A readable stream of the artifact (the caller closes it)."""
    key_check(key)
    if _minio_selected():
        return io.BytesIO(_minio_get(key))
    return _fs_path_existing(key).open("rb")


def artifact_url(*, key: str) -> str | None:
    """A presigned GET URL browsers can use (MinIO), or None when the app must serve the bytes.

    The URL is signed for MINIO_PUBLIC_ENDPOINT without any network call. Its signing time is
    rounded down to a window of half the TTL, so the same key gives the same URL for a while
    (browsers cache the image) and every URL handed out stays valid at least TTL/2 seconds.
    """
    key_check(key)
    if not _minio_selected():
        return None
    ttl = max(2, int(settings.ARTIFACT_URL_TTL_S))
    window = ttl // 2
    signed_at = datetime.fromtimestamp(int(time.time()) // window * window, tz=UTC)
    return _public_client().presigned_get_object(
        settings.MINIO_BUCKET, key, expires=timedelta(seconds=ttl), request_date=signed_at
    )


def _minio_selected() -> bool:
    store = settings.ARTIFACT_STORE
    if store == "minio":
        return True
    if store == "filesystem":
        return False
    raise StepError(f'ARTIFACT_STORE is "{store}"; expected "filesystem" or "minio"')


# Filesystem


def _fs_path(key: str) -> Path:
    return Path(settings.ARTIFACTS_DIR) / key_check(key)


def _fs_path_existing(key: str) -> Path:
    path = _fs_path(key)
    if not path.is_file():
        raise StepError(f"Artifact {key} is missing from the store")
    return path


def _fs_put(key: str, data: bytes) -> None:
    path = _fs_path(key)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)  # atomic: a reader never sees half a file


# MinIO


def _minio_settings() -> tuple[str, str, str, bool, str]:
    return (
        settings.MINIO_ENDPOINT,
        settings.MINIO_ACCESS_KEY or "",
        settings.MINIO_SECRET_KEY or "",
        bool(settings.MINIO_SECURE),
        settings.MINIO_REGION or "us-east-1",
    )


def _client() -> Minio:
    return _client_for(*_minio_settings(), pid=os.getpid())


def _public_client() -> Minio:
    endpoint, access_key, secret_key, secure, region = _minio_settings()
    public = settings.MINIO_PUBLIC_ENDPOINT or endpoint
    # "https://files.example.com" is accepted too: its scheme wins over MINIO_SECURE, for a
    # public endpoint behind a TLS proxy in front of a plain-HTTP MinIO.
    for scheme, is_secure in (("https://", True), ("http://", False)):
        if public.startswith(scheme):
            public, secure = public.removeprefix(scheme).rstrip("/"), is_secure
    return _client_for(public, access_key, secret_key, secure, region, pid=os.getpid())


@functools.lru_cache(maxsize=16)
def _client_for(endpoint: str, access_key: str, secret_key: str, secure: bool, region: str, *, pid: int) -> Minio:
    # One client per settings and process (a forked worker never shares the parent's sockets).
    # The region is explicit, so neither requests nor URL signing ask the server for it; the
    # timeouts are short and retries few because the engine retries the step itself.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=60),
        maxsize=10,
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return Minio(
        endpoint,
        access_key=access_key or None,
        secret_key=secret_key or None,
        secure=secure,
        region=region,
        http_client=http,
    )


_buckets_ready: set[tuple] = set()
_buckets_lock = threading.Lock()


def _bucket_ensure(client: Minio) -> None:
    """Create the bucket when missing, once per process; another process may race us to it."""
    endpoint, _, _, _, region = _minio_settings()
    bucket = settings.MINIO_BUCKET
    marker = (endpoint, bucket, os.getpid())
    if marker in _buckets_ready:
        return
    with _buckets_lock:
        if marker in _buckets_ready:
            return
        if not client.bucket_exists(bucket):
            try:
                client.make_bucket(bucket, location=region)
            except S3Error as exc:
                if exc.code != "BucketAlreadyOwnedByYou":
                    raise
        _buckets_ready.add(marker)


def _store_error(exc: Exception, key: str, doing: str) -> StepError:
    where = f"the artifact store at {settings.MINIO_ENDPOINT} (bucket {settings.MINIO_BUCKET})"
    if isinstance(exc, S3Error):
        detail = f"{exc.code}: {exc.message}"
        cls = TransientStepError if exc.code in _S3_TRANSIENT else StepError
    else:  # network failure, 5xx, a reply that is not S3's
        detail = f"{type(exc).__name__}: {exc}"
        cls = TransientStepError
    return cls(f"Could not {doing} artifact {key} in {where}: {detail}")


_NETWORK_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError)


def _minio_put(key: str, data: bytes) -> None:
    client = _client()
    bucket = settings.MINIO_BUCKET
    try:
        _bucket_ensure(client)
        try:
            client.stat_object(bucket, key)
            return  # content-addressed: already there means the same bytes
        except S3Error as exc:
            if exc.code not in _S3_MISSING:
                raise
        client.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type(key))
    except _NETWORK_ERRORS as exc:
        raise _store_error(exc, key, "store") from exc


def _minio_get(key: str) -> bytes:
    response = None
    try:
        response = _client().get_object(settings.MINIO_BUCKET, key)
        return response.read()
    except S3Error as exc:
        if exc.code in _S3_MISSING:
            raise StepError(f"Artifact {key} is missing from the store") from exc
        raise _store_error(exc, key, "read") from exc
    except _NETWORK_ERRORS as exc:
        raise _store_error(exc, key, "read") from exc
    finally:
        if response is not None:
            response.close()
            response.release_conn()
