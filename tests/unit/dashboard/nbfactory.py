"""Small notebooks for the dashboard's rendering tests, built in code."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

RED = "\x1b[0;31m"
RESET = "\x1b[0m"


def png(width: int = 4, height: int = 3) -> bytes:
    """A real PNG (RGB, a red-to-blue gradient), made without any imaging library."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((255 * x // max(width - 1, 1), 0, 255 * y // max(height - 1, 1)))
                           for x in range(width))
        for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG_B64 = base64.b64encode(png()).decode()


def code(source: str, count: int | None, *outputs: dict[str, Any]) -> dict[str, Any]:
    return {"cell_type": "code", "source": source, "metadata": {},
            "execution_count": count, "outputs": list(outputs)}


def markdown(source: str | list[str]) -> dict[str, Any]:
    return {"cell_type": "markdown", "source": source, "metadata": {}}


def stream(text: str | list[str], name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def result(count: int | None, data: dict[str, Any]) -> dict[str, Any]:
    return {"output_type": "execute_result", "execution_count": count, "metadata": {},
            "data": data}


def display(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


def error(ename: str = "ZeroDivisionError", evalue: str = "division by zero",
          traceback: list[str] | None = None) -> dict[str, Any]:
    return {"output_type": "error", "ename": ename, "evalue": evalue,
            "traceback": traceback or [f"{RED}{ename}{RESET}  Traceback (most recent call last)",
                                       "Cell In[3], line 1\n----> 1 1/0",
                                       f"{RED}{ename}{RESET}: {evalue}"]}


def notebook(*cells: dict[str, Any]) -> dict[str, Any]:
    return {"nbformat": 4, "nbformat_minor": 5, "cells": list(cells),
            "metadata": {"language_info": {"name": "python", "pygments_lexer": "ipython3"}}}


def class_notebook(user: str) -> dict[str, Any]:
    """A participant's notebook with a table, an image, stream output and a traceback."""
    table = ("<div><style scoped>.dataframe td { color: red }</style>"
             "<table class=\"dataframe\"><thead><tr><th>name</th><th>score</th></tr></thead>"
             f"<tbody><tr><td>{user}</td><td>42</td></tr></tbody></table></div>")
    return notebook(
        markdown(f"# Exercises of {user}"),
        code("print('hello')", 1, stream("hello\n")),
        code("df", 2, result(2, {"text/html": table, "text/plain": f"name score\n{user} 42"})),
        code("plot()", 3, display({"image/png": PNG_B64, "text/plain": "<Figure>"})),
        code("1/0", 4, error()),
    )


def write(path: Path, nb: dict[str, Any] | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nb if isinstance(nb, str) else json.dumps(nb), encoding="utf-8")
    return path
