"""The portal's own static files (stylesheets, scripts, the embedded-dashboard SDK) kept by browsers.

Every ``url_for("static", filename=…)`` gets ``?v=<digest of the file>``; an answer to such a URL whose
digest is the file's current one is ``Cache-Control: public, max-age=31536000, immutable``, so a
second page view asks for none of them (before, each was revalidated with a conditional request:
five round trips on the dashboard page before the embedded dashboard could start). A deploy that
changes a file changes its URL; an old URL (a page cached before the deploy) is answered without
the long lifetime. Fonts that stylesheets name by relative URLs keep Flask's revalidation.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

from flask import Flask, Response, current_app, request

#: A year: the longest lifetime HTTP caches honour, for a URL whose content never changes.
IMMUTABLE = "public, max-age=31536000, immutable"


@lru_cache(maxsize=512)
def _digest(path: str, mtime_ns: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:16]


def file_version(filename: str) -> str | None:
    """The short digest of ``static/<filename>``, or None when there is no such file (Flask answers 404)."""
    folder = current_app.static_folder
    if not folder:
        return None
    path = os.path.realpath(os.path.join(folder, filename))
    if not path.startswith(os.path.realpath(folder) + os.sep) or not os.path.isfile(path):
        return None
    return _digest(path, os.stat(path).st_mtime_ns)


def _add_version(endpoint: str, values: dict) -> None:
    if endpoint == "static" and "filename" in values and "v" not in values:
        version = file_version(values["filename"])
        if version:
            values["v"] = version


def _keep_versioned(response: Response) -> Response:
    if (request.endpoint == "static" and response.status_code == 200 and request.args.get("v")
            and request.args["v"] == file_version(request.view_args.get("filename", ""))):
        response.headers["Cache-Control"] = IMMUTABLE
    return response


def init_app(app: Flask) -> None:
    app.url_defaults(_add_version)
    app.after_request(_keep_versioned)
