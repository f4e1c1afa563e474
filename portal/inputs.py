"""What a request may bring, bounded before any view sees it: ids, bodies, JSON.

* **Ids** in URLs (``<int:…>``) are PostgreSQL integers: a larger number names nothing, so the
  route does not match (404) instead of failing in the database (``integer out of range``).
* **Bodies** stay within the limit of their endpoint however they are sent. Werkzeug caps a body
  without ``Content-Length`` (chunked transfer) at ``MAX_CONTENT_LENGTH`` by cutting it off
  silently: a 70 MB body arrives as its first 64 MB, and limits that look at ``Content-Length``
  see none. :func:`bound_bodies` reads such a body first, up to the endpoint's limit (into a
  spooled temporary file: memory stays small) and answers 413 beyond it; within it, the body gets
  a ``Content-Length`` like any other. A view declares a tighter limit with :func:`body_limit`.
* **JSON** nested deeper than Python's recursion allows is malformed input (``ValueError``, so
  ``get_json`` answers 400), not a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from tempfile import SpooledTemporaryFile
from typing import Any

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

#: The largest id PostgreSQL's ``integer`` holds (ingest run ids are ``bigint`` but never get there).
MAX_ID = 2**31 - 1
CHUNK = 64 * 1024


class DatabaseIdConverter(IntegerConverter):
    """``<int:…>`` for ids: 0 to ``MAX_ID``."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID,  # noqa: A002
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def body_limit(max_bytes: int) -> Callable:
    """Give a view a tighter body limit than the app's ``MAX_CONTENT_LENGTH`` (413 beyond it)."""
    def mark(view: Callable) -> Callable:
        view.body_limit = max_bytes
        return view
    return mark


def _limit() -> int:
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "body_limit", None) or current_app.config["MAX_CONTENT_LENGTH"]


def bound_bodies() -> None:
    """Refuse a body beyond its endpoint's limit (413), also one sent without Content-Length."""
    environ = request.environ
    limit = _limit()
    length = environ.get("CONTENT_LENGTH", "")
    if length.isdigit():
        if int(length) > limit:
            raise RequestEntityTooLarge()
        return
    if "wsgi.input_terminated" not in environ:
        return  # no length and no way to tell the end: Werkzeug reads nothing
    spooled = SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 - it becomes wsgi.input
    size = 0
    while chunk := environ["wsgi.input"].read(CHUNK):
        size += len(chunk)
        if size > limit:
            spooled.close()
            raise RequestEntityTooLarge()
        spooled.write(chunk)
    spooled.seek(0)
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = spooled, str(size)
    # A sized body now: Werkzeug ignores Content-Length while Transfer-Encoding says chunked.
    del environ["wsgi.input_terminated"]
    environ.pop("HTTP_TRANSFER_ENCODING", None)


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with nesting beyond the recursion limit reported as malformed input."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s, **kwargs)


def loads(s: str | bytes, **kwargs: Any) -> Any:
    """``json.loads``; raises ``ValueError`` (not ``RecursionError``) for JSON nested too deeply."""
    try:
        return json.loads(s, **kwargs)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def init_app(app: Flask) -> None:
    """Call before blueprints are registered (their rules read the converters)."""
    app.url_map.converters["int"] = DatabaseIdConverter
    app.json = BoundedJSONProvider(app)
    # First of all hooks: CSRF protection reads form bodies in its own before_request.
    app.before_request_funcs.setdefault(None, []).insert(0, bound_bodies)
