"""The synthetic class the dashboard benchmarks render: one notebook per participant, as a
day-one lesson leaves it (markdown, stream output, HTML tables, PNG plots, tracebacks).

No dashboard imports: benchmarks can measure any checkout's dashboard with it.
"""

from __future__ import annotations

import json
import math
import os
import random
import struct
import zlib
from pathlib import Path

PATH = "day1/intro.ipynb"
RED, GREEN, RESET = "\x1b[0;31m", "\x1b[0;32m", "\x1b[0m"


def plot_png(seed: int, width: int = 480, height: int = 320) -> bytes:
    """A plot-like PNG (curve, shaded area with noise, axes), like matplotlib's output."""
    rng = random.Random(seed)
    phase, freq = rng.uniform(0, 6.3), rng.uniform(25, 60)
    raw = bytearray()
    for y in range(height):
        raw.append(0)
        for x in range(width):
            curve = height / 2 - height / 3 * math.sin(x / freq + phase)
            if x in (40, 41) or y in (height - 30, height - 29):
                px = (0, 0, 0)
            elif abs(y - curve) < 1.8:
                px = (31, 119, 180)
            elif y > curve and x > 41 and y < height - 30:
                n = rng.randint(-6, 6)
                px = (174 + n, 199 + n, 232 + n)
            else:
                px = (255, 255, 255)
            raw.extend(px)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def table_html(rows: int, seed: int) -> str:
    rng = random.Random(seed)
    body = "".join(
        f"    <tr>\n      <th>{i}</th>\n" + "".join(
            f"      <td>{rng.uniform(0, 100):.3f}</td>\n" for _ in range(4)) + "    </tr>\n"
        for i in range(rows))
    return ("<div>\n<style scoped>\n    .dataframe tbody tr th:only-of-type {\n"
            "        vertical-align: middle;\n    }\n</style>\n"
            '<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: right;">'
            "\n      <th></th>\n      <th>a</th>\n      <th>b</th>\n      <th>c</th>\n"
            f"      <th>d</th>\n    </tr>\n  </thead>\n  <tbody>\n{body}  </tbody>\n"
            "</table>\n</div>")


def traceback(depth: int) -> list[str]:
    frames = [f"{GREEN}File ~/day1/helpers.py:{10 + i}{RESET}, in step_{i}(x)\n"
              f"     {9 + i} def step_{i}(x):\n---> {10 + i}     return step_{i + 1}(x) / x\n"
              for i in range(depth)]
    return [f"{RED}-----------------------------------------------------------------{RESET}",
            f"{RED}ZeroDivisionError{RESET}{' ' * 25}Traceback (most recent call last)",
            *frames, f"{RED}ZeroDivisionError{RESET}: division by zero"]


def make_notebook(user_index: int, images: list[str], save: int = 0) -> dict:
    rng = random.Random(user_index)
    count = iter(range(1, 100))

    def code(src: str, *outputs: dict) -> dict:
        return {"cell_type": "code", "execution_count": next(count), "metadata": {},
                "source": src, "outputs": list(outputs)}

    def md(src: str) -> dict:
        return {"cell_type": "markdown", "metadata": {}, "source": src}

    def out(text: str, name: str = "stdout") -> dict:
        return {"output_type": "stream", "name": name, "text": text}

    def data(kind: str, bundle: dict) -> dict:
        o = {"output_type": kind, "data": bundle, "metadata": {}}
        return {**o, "execution_count": 0} if kind == "execute_result" else o

    lines = "".join(f"epoch {i}: loss={1 / (i + 1):.4f}\n" for i in range(rng.randint(40, 80)))
    stuck = user_index % 3 == 0  # a third of the class ends on a traceback
    cells = [
        md("# Day 1: a first look at the data\n\nRun each cell with **Shift-Enter**."),
        code("import math\nimport random\nfrom helpers import load, step_0"),
        code("for i in range(12):\n    print(i, i * i)",
             out("".join(f"{i} {i * i}\n" for i in range(12)))),
        md("## The table\nA `DataFrame` renders as HTML."),
        code("df = load('scores.csv')\ndf.head(12)", data("execute_result", {
            "text/html": table_html(12, user_index), "text/plain": "<DataFrame 12x4>"})),
        code("df.describe()", data("execute_result", {
            "text/html": table_html(8, user_index + 1000), "text/plain": "<DataFrame 8x4>"})),
        md("## A plot"),
        code("df.plot()", data("display_data", {
            "image/png": images[user_index % len(images)],
            "text/plain": "<Figure size 640x480 with 1 Axes>"})),
        code("train(model, epochs=80)", out(lines)),
        md("## Exercise 1\nFix `step_0` so that it never divides by zero."),
        code("import warnings\nwarnings.warn('deprecated')",
             out("<ipython-input-9>:2: UserWarning: deprecated\n", "stderr")),
        *[code(f"x{k} = {k} * 3\nx{k}", data("execute_result", {"text/plain": str(k * 3)}))
          for k in range(5)],
        code("df.plot(kind='scatter', x='a', y='b')", data("display_data", {
            "image/png": images[(user_index + 1) % len(images)],
            "text/plain": "<Figure size 640x480 with 1 Axes>"})),
        md("## Exercise 2"),
        code("step_0(0)", {"output_type": "error", "ename": "ZeroDivisionError",
                           "evalue": "division by zero", "traceback": traceback(4)}),
        code(f"print('save {save}')", out(f"save-marker {user_index}-{save}\n")),
    ]
    if stuck:  # the traceback cell was run last
        cells[-2], cells[-1] = cells[-1], cells[-2]
        cells[-1]["execution_count"], cells[-2]["execution_count"] = 99, 98
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i:02d}"
        for o in c.get("outputs", []):
            if o["output_type"] == "execute_result":
                o["execution_count"] = c["execution_count"]
    return {"nbformat": 4, "nbformat_minor": 5, "cells": cells, "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"}}}


def save(home: Path, user: str, nb: dict, path: str = PATH) -> None:
    """Write the way Jupyter's contents manager does: temporary file, then rename."""
    write_text(home / user / path, json.dumps(nb, indent=1))


def write_text(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".~{target.name}")
    tmp.write_text(text)
    os.replace(tmp, target)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
