"""Keeping participants' notebooks from running anything in the instructor's browser.

Participants' notebooks are untrusted input, rendered on the dashboard's origin where the
instructor is logged in. Three layers:

1. `ipytail.load_notebook` rebuilds every notebook from an allowlist: no javascript or
   widget outputs, no output filenames, prompt numbers are ints, text is text.
2. The exporter runs with ``sanitize_html=True`` and its ``clean_html`` filter is
   `Sanitizer`: bleach with an allowlist of formatting and table tags, no ``id``/``name``
   (no DOM clobbering), no event handlers, links only http(s)/mailto/#, images only
   ``data:image/...`` (nothing loads from elsewhere); <script> and <style> elements are
   dropped with their content. Images, pandas tables and coloured tracebacks still show.
3. Every page written carries ``<meta http-equiv="Content-Security-Policy">`` with
   `PAGE_CSP`: no script runs, nothing loads but inline styles and data: images.

How the dashboard serves them:

* Files below the output dir (views, summaries) are sent with `SERVE_HEADERS`. Its
  ``sandbox`` directive gives the page an opaque origin: even a script that slipped
  through every layer could neither run (no ``allow-scripts``) nor reach the dashboard's
  cookies or API. Embed them, if at all, in ``<iframe sandbox src=...>``.
* A dashboard page of its own that inlines sanitized fragments (`Renderer.fragment`, e.g.
  to update one participant in place) must itself be sent with `INLINE_PAGE_CSP`: its own
  scripts come from files ('self'), no inline script or handler can run.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from bleach.css_sanitizer import CSSSanitizer
from bleach.sanitizer import Cleaner

PAGE_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
            "base-uri 'none'; form-action 'none'")
# Headers for every file below the output dir.
SERVE_HEADERS = {
    "Content-Security-Policy": f"sandbox; {PAGE_CSP}; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# For the dashboard's own pages if they inline sanitized fragments.
INLINE_PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                   "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                   "form-action 'self'; frame-ancestors 'self'")

ALLOWED_TAGS = frozenset({
    "a", "abbr", "acronym", "b", "blockquote", "br", "caption", "cite", "code", "col",
    "colgroup", "dd", "del", "details", "div", "dl", "dt", "em", "figcaption", "figure",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol",
    "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
})
_EVERYWHERE = frozenset({"class", "title", "style", "align", "dir", "lang"})
_DROP_WITH_CONTENT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    if name in _EVERYWHERE:
        return True
    if tag == "a":
        return name == "href" and value.strip().lower().startswith(
            ("http://", "https://", "mailto:", "#"))
    if tag == "img":
        return name in ("alt", "width", "height") or (
            name == "src" and value.strip().lower().startswith("data:image/"))
    if tag in ("td", "th"):
        return name in ("colspan", "rowspan")
    return tag == "ol" and name == "start"


class Sanitizer:
    """The ``clean_html`` filter: untrusted HTML to HTML that only formats."""

    def __init__(self) -> None:
        self._cleaner = Cleaner(
            tags=ALLOWED_TAGS, attributes=_allow_attribute,
            protocols=frozenset({"http", "https", "mailto", "data"}),
            strip=True, strip_comments=True, css_sanitizer=CSSSanitizer())
        self._lock = threading.Lock()  # a bleach Cleaner is not thread-safe

    def __call__(self, html: Any) -> str:
        text = html.decode() if isinstance(html, bytes) else str(html)
        # Cosmetic only (bleach below is the boundary): without this a stripped <style>
        # leaves its CSS as visible text, e.g. in every pandas DataFrame.
        text = _DROP_WITH_CONTENT.sub("", text)
        with self._lock:
            return self._cleaner.clean(text)
