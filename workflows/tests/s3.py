"""An S3-compatible server for tests: moto's standalone server on loopback, once per process."""

import atexit
import functools
import uuid

from moto.server import ThreadedMotoServer


@functools.cache
def moto_endpoint() -> str:
    """host:port of moto's S3 server, started on first use, once per process."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    atexit.register(server.stop)
    host, port = server.get_host_and_port()
    return f"{host}:{port}"


def use_minio(settings, endpoint: str) -> None:
    """Point the settings at the S3 server, with a bucket of this test's own (not yet created)."""
    settings.ARTIFACT_STORE = "minio"
    settings.MINIO_ENDPOINT = endpoint
    settings.MINIO_PUBLIC_ENDPOINT = endpoint
    settings.MINIO_ACCESS_KEY = "testing"
    settings.MINIO_SECRET_KEY = "testing"
    settings.MINIO_SECURE = False
    settings.MINIO_REGION = "us-east-1"
    settings.MINIO_BUCKET = f"test-{uuid.uuid4().hex[:16]}"
