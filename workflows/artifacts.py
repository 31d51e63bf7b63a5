"""The artifact store: large step outputs (bars, charts) live here; outputs hold the key.

Keys are content-addressed (`<kind>/<sha256>.<ext>`), so writing the same bytes twice is free
and a key always means the same bytes. The filesystem backend is the embedded default; the
MinIO backend arrives with the charts issue behind the same two functions.
"""

import hashlib
import re
from pathlib import Path

from django.conf import settings

from workflows.errors import StepError

KEY = re.compile(r"^[a-z0-9_\-]+/[0-9a-f]{64}\.[a-z0-9]+$")


def _path(key: str) -> Path:
    if not KEY.match(key):
        raise StepError(f'"{key}" is not an artifact key')
    return Path(settings.ARTIFACTS_DIR) / key


def artifact_put(*, data: bytes, kind: str, ext: str) -> str:
    key = f"{kind}/{hashlib.sha256(data).hexdigest()}.{ext}"
    path = _path(key)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{id(data)}")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a reader never sees half a file
    return key


def artifact_get(*, key: str) -> bytes:
    path = _path(key)
    if not path.exists():
        raise StepError(f"Artifact {key} is missing from the store")
    return path.read_bytes()
