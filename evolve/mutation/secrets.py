"""Keeping API keys out of everything evolve writes.

Keys are read from the environment at the moment of each request (config holds only the
variable's NAME) and are passed to litellm, never stored. Provider error messages can still
echo a key or an Authorization header back, so every text that leaves the LLM layer for the
database or a log goes through `redact` first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
# Names of environment variables that hold credentials (OPENAI_API_KEY, HF_TOKEN, ...).
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)S?$|^AWS_", re.IGNORECASE)
_MIN_SECRET_LEN = 8  # shorter values ("1", "true") would redact ordinary words
# Shapes of keys and auth headers, for keys that are not in this process's environment.
_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)((?:x-)?api[-_]?key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]{8,}"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}\n]{8,}"),
    re.compile(r"()\b(?:sk|pk|rk)-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}"),
    re.compile(r"()\bAIza[0-9A-Za-z_-]{30,}"),  # Google API keys
]


def secret_values(extra_names: Iterable[str] = ()) -> list[str]:
    """Values of credential-like environment variables (and of `extra_names`), longest first."""
    names = set(extra_names)
    names.update(n for n in os.environ if _SECRET_NAME.search(n))
    values = {os.environ.get(n, "") for n in names}
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)


def redact(text: str | None, extra_names: Iterable[str] = (), patterns: bool = True) -> str | None:
    """`text` with every known secret value replaced by [REDACTED], and with `patterns`, also
    key-shaped tokens and auth headers. Prompts and answers (code) use `patterns=False`: only a
    literal key is removed, so code that merely looks like a header is stored as it was."""
    if not text:
        return text
    for value in secret_values(extra_names):
        if value in text:
            text = text.replace(value, REDACTED)
    if not patterns:
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text
