"""How much of one participant's notebook the dashboard reads, renders and shows.

Participants control their notebooks: any JSON up to the read cap. Every limit here keeps
one notebook from costing everyone else their updates; each is chosen for a workshop,
where a long lesson notebook has a few hundred cells and outputs of a few hundred lines.
A notebook over a whole-notebook limit is shown as a placeholder that says which limit
("too large to show: 100 000 cells"); text over a per-output limit is cut, with a note.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

KiB, MiB = 1024, 1024**2

# -- reading ---------------------------------------------------------------------------
# The largest notebook file read at all (sources.py, contents_source.py). Plots make real
# notebooks a few MiB; 64 MiB leaves room for a notebook with a 20 MiB output.
NOTEBOOK_MAX_BYTES = 64 * MiB


@dataclass(frozen=True)
class Limits:
    """What one render may cost and show; the defaults are the dashboard's."""

    # Whole notebook: beyond these it is a placeholder, not a render. 2 000 short cells
    # render in about 3 s on a 2-core machine; 100 000 minimal cells took 49 s.
    max_cells: int = 2_000
    # Outputs of all cells together (a loop of display() calls makes thousands).
    max_outputs: int = 10_000

    # Full view: an output's text and a cell's source are cut to head + note + tail beyond
    # this many characters (about 2 000 lines of 50): a 20 MiB one-line print would
    # otherwise be 40 MiB of HTML, and the sanitizer's time grows with it.
    view_text_chars: int = 100_000
    # The whole view page; a larger one (many big images) is a placeholder.
    view_max_bytes: int = 32 * MiB

    # Summary (the last cells of everyone on one page): per output, after the line trim,
    # and per source. 25 lines of 160 characters.
    summary_text_chars: int = 4_000
    # Outputs shown per cell (a loop printing with display() makes hundreds).
    summary_outputs: int = 10
    # An image larger than this (base64 characters) is a note in the summary: a typical
    # matplotlib plot is 20-60 KiB; the full view still shows it.
    summary_image_chars: int = 256 * KiB
    # One participant's fragment of the summary; a larger one is a note there (the full
    # view still shows it). 60 participants x 1 MiB is the worst summary page.
    summary_part_bytes: int = 1 * MiB

    # The render process (renderpool.py). A normal notebook renders in well under a
    # second, one at the cell limit in about 3 s: 20 s means something is pathological.
    seconds: float = 20.0
    # Address space of a render process (RLIMIT_AS), including the ~90 MiB of Python and
    # nbconvert it starts with. The largest notebooks the read cap lets through peak at
    # 340 MiB (60 MiB of images) and 290 MiB (a 60 MiB output); 512 MiB leaves room for
    # those, and two processes cannot take more than 1 GiB from a small droplet.
    memory_bytes: int = 512 * MiB

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# How many notebooks render at once (one process each). Two: a notebook that takes its
# whole time limit leaves the other process to everybody else; more would only compete
# for the two cores of a small droplet with the hub and the participants' kernels.
RENDER_PROCESSES = 2


def size_text(count: int, unit: str = "B") -> str:
    """A size for people: ``"19.9 MiB"``, ``"812 KiB"``, ``"312 B"`` (or characters)."""
    if count >= MiB:
        return f"{count / MiB:.1f}".removesuffix(".0") + f" Mi{unit}"
    if count >= 10 * KiB:
        return f"{count // KiB} Ki{unit}"
    return f"{count} {unit}"


def number_text(count: int) -> str:
    """``100000`` as ``"100 000"``: the way the board shows counts."""
    return f"{count:,}".replace(",", " ")
