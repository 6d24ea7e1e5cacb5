"""JSON from untrusted clients: shallow, with numbers a database can hold.

Python's own parser recurses once per nesting level (a body of 100 000 "[" raised
RecursionError, a 500) and refuses integers over 4300 digits with a ValueError of its
own. Here the nesting is measured before parsing, in one linear pass, and numbers are
checked while parsing, so every bad body is an `UnsafeJSON` (a ValueError) with a
readable message: a 400, never a 500.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

# The deepest document the dashboard accepts is a batch of records ({"events": [{...}]}):
# three levels. Eight leaves room for a record's own small mapping and nothing silly.
MAX_DEPTH = 8
# SQLite stores integers in 64 bits (19 digits); 18 digits always fit, and no count,
# duration or id a participant's server reports comes near.
MAX_INT_DIGITS = 18

# A JSON string (possessive, so an unterminated one costs one pass, not one per quote):
# removed first, so brackets inside strings do not count. The rest runs in C (measured:
# under 6 ms for any 64 KiB body).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


class UnsafeJSON(ValueError):
    """A body that is not JSON, or JSON the dashboard will not parse."""


def depth(data: bytes) -> int:
    """How deeply `data` nests arrays and objects (malformed JSON is measured too)."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))


def _int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise UnsafeJSON(f"a number has more than {MAX_INT_DIGITS} digits")
    return int(digits)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJSON("a number is too large")
    return value


def _constant(name: str) -> Any:
    raise UnsafeJSON(f"{name} is not JSON")


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `data` (UTF-8 when bytes) or raise UnsafeJSON saying what is wrong."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if depth(data) > max_depth:
        raise UnsafeJSON(f"nested more than {max_depth} levels deep")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnsafeJSON(f"not UTF-8 text (byte {e.start})") from None
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as e:
        raise UnsafeJSON(f"malformed JSON: {e}") from None
    except RecursionError:  # cannot happen after the depth check; a guard all the same
        raise UnsafeJSON("nested too deeply") from None
