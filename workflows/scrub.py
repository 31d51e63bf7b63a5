"""Secret scrubbing: the one way a known secret (an API key, a webhook URL, a token) is taken out of a text
before the text reaches a log, a step's output, the database or a page (DESIGN §7 rule 6)."""

from collections.abc import Iterable

MASK = "***"


def scrub_secrets(text: str, secrets: Iterable[str], *, mask: str = MASK, min_length: int = 1) -> str:
    """`text` with every occurrence of each secret replaced by `mask`.

    Longest first, so a secret that contains another (a URL holding a token) leaves nothing behind;
    secrets shorter than `min_length` are ignored (replacing "ab" everywhere would garble the text)."""
    for secret in sorted({s for s in secrets if s and len(s) >= min_length}, key=len, reverse=True):
        text = text.replace(secret, mask)
    return text
