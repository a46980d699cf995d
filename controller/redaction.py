"""Keep secrets out of prompts, tickets and logs; mark text from the cluster as untrusted."""

from __future__ import annotations

import os
import re

REDACTED = "[REDACTED]"
_PATTERNS = [
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),  # Anthropic keys
    # PEM blocks (private keys, certificates with keys), whole, across lines.
    re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?-----END [A-Z0-9 ]+-----", re.DOTALL),
    re.compile(r"(?i)((?:bearer|basic)\s+)[A-Za-z0-9._~+/=\-]{8,}"),
    # Credentials in URLs: scheme://user:password@host
    re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@]+:)[^\s/@]+(?=@)"),
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),  # AWS access key ids
    re.compile(r"(?i)(aws_secret_access_key[\\\"']*\s*[:=]\s*[\\\"']*)[A-Za-z0-9/+=]{30,}"),
    # key=value and "key": "value", also inside JSON-escaped strings (\"password\":\"...\").
    re.compile(
        r"(?i)((?:api[_-]?key|token|password|passwd|secret|x-api-key)[\\\"']*\s*[:=]\s*[\\\"']*)[^\s\"',}\\]{6,}"
    ),
    re.compile(
        r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"
    ),  # JWTs (service-account tokens)
]
SECRET_ENV_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


def known_secrets() -> list[str]:
    return [v for name in SECRET_ENV_VARS if (v := os.environ.get(name)) and len(v) >= 6]


def redact(text: str, extra_secrets: list[str] | None = None) -> str:
    """Remove every known secret value and anything shaped like a credential."""
    for secret in [*known_secrets(), *(extra_secrets or [])]:
        text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def quote_untrusted(text: str, source: str) -> str:
    """Wrap text that came from the cluster (events, logs): the model treats it as data.

    Any closing tag inside is defused, so the text cannot end the quote and speak as us.
    """
    safe = text.replace("</untrusted", "<\\/untrusted")
    return f'<untrusted source="{source}">\n{safe}\n</untrusted>'
