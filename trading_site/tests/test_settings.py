import re
from pathlib import Path

from django.conf import settings

SETTINGS = Path(settings.BASE_DIR) / "trading_site" / "settings.py"
ENV_EXAMPLE = Path(settings.BASE_DIR) / ".env.example"


def names_read_by_settings() -> set[str]:
    source = SETTINGS.read_text()
    return set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z0-9_]+)"', source)) | set(
        re.findall(r'secret\(\s*"([A-Z0-9_]+)"', source)
    )


def test_every_setting_read_from_the_environment_is_documented():
    names = names_read_by_settings()
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ENGINE_SWEEP_INTERVAL_S"} <= names
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    assert names - documented == set()


def test_every_documented_variable_has_a_comment_above_it():
    variable = re.compile(r"^#?\s*[A-Z0-9_]+=")
    lines = ENV_EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if variable.match(line):
            # Above it: a comment, possibly after other variables of the same group.
            j = i - 1
            while j >= 0 and variable.match(lines[j]):
                j -= 1
            assert j >= 0 and lines[j].startswith("#"), f".env.example line {i + 1} ({line}) has no comment above it"
