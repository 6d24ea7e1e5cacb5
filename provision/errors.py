"""One error type and one way to print it.

create-node.py promises instructors a single readable line and exit code 2 for
every expected failure, never a traceback; everything that can go wrong in a
known way raises ProvisionError with that line as its message.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

EXIT_FAILURE = 2
PROG = "create-node"


class ProvisionError(Exception):
    """An expected failure: `message` is the one line shown to the instructor.

    `details` are extra lines printed after it (for example the last lines of
    setup-node.sh's output); they are context, the first line says it all.
    """

    def __init__(self, message: str, details: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)


class Redactor:
    """Removes secrets from any text before it reaches the terminal.

    The API token is the secret that matters: exception messages from
    libraries are echoed to the user, so every line passes through here.
    """

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, secret: str | None) -> None:
        # Very short strings would redact innocent text; real tokens are long.
        if secret and len(secret) >= 8 and secret not in self._secrets:
            self._secrets.append(secret)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


REDACT = Redactor()


def one_line(text: str) -> str:
    """Collapse a (possibly multi-line) library message into one line."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def report(error: ProvisionError, stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    print(REDACT(f"{PROG}: error: {one_line(error.message)}"), file=out)
    for line in error.details:
        print(REDACT(line), file=out)
    out.flush()
