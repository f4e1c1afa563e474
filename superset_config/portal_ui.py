"""German and accessible Superset pages, without editing Superset's installed files.

``superset_config.FLASK_APP_MUTATOR`` calls :func:`install` once Superset's app exists. It adds:

* **Corrected German** (and any other language), **without unreviewed guesses**
  (:func:`unreviewed_msgids`): Superset's frontend loads its strings from
  ``/superset/language_pack/<lang>/``, which serves ``superset/translations/<lang>/LC_MESSAGES/
  messages.json`` from the wheel. serving.py answers that path itself, before Flask, with the
  wheel's pack and our overrides merged in by :func:`language_pack` (``translations/<lang>.json``
  next to this file: a JSON object msgid → corrected msgstr, or a list of the plural forms for a
  msgid Superset uses with ``tn``; keys starting with ``_`` are comments). An override whose msgid
  the pack does not know is still served (Superset may add it later) and reported by
  ``unknown_overrides`` for the test. The pack is public in Superset too (its strings are no secret),
  so answering before Superset's own access check changes nothing for anyone.
* **A declared language** on every HTML page: ``<html>`` becomes ``<html lang="de">`` (or the
  request's language: the portal passes ``_l_=en`` to the embedded page in English mode, which
  Flask-AppBuilder's locale selector honours per request).
* **The ready-made dashboards' own texts in the page's language**: their titles, chart titles, intro
  texts, filter names and column labels are written in German into Superset (the templates in
  ``dashboards/``). When the embedded dashboard is opened in another language (the portal's ``_l_``),
  the answers of the dashboard API that carry these texts (``/api/v1/dashboard/<id>``, ``…/charts``,
  ``…/datasets``) get them from ``translations/dashboards.<lang>.json`` (German text → text). Only
  named display keys are touched, never a chart's form data: a guest's query must stay the one the
  chart was saved with. The frontend's API calls carry no ``_l_``, so the language is taken from the
  embedded page that made them (its address, the ``Referer``), else from the session, where the
  embedded page records it (Flask-AppBuilder's language choice lives there too).
* **On the embedded dashboard page** a stylesheet (contrast, visible focus) and a small script under
  the page's CSP nonce that makes every chart a keyboard stop named after its title (Superset's
  chart holders are plain ``div``s, so a keyboard user otherwise passes only the filter bar) and
  makes the names of icon buttons contain what they show (axe-core's label-content-name-mismatch).
* **Texts Superset's frontend writes without the language pack**: a filter's label in the chart editor
  is built from the column's name, not its label (``day (No filter)``, ``service IN (…)``,
  ``2025-11-01 ≤ day < …``); "No filter" stays English there and in a dashboard chart's filter badge;
  the table chart writes "N/A" into an empty cell. :data:`EDITOR_SCRIPT`, on every Superset page,
  writes the column's label (``datasets.json``, in the page's language) and the pack's own words for
  "No filter" and "N/A" ("Kein Filter", "keine Angabe") into those texts, in place. The data pane under
  a chart in the editor (and SQL Lab's results) shows raw values: the script writes their dates and
  numbers as the page's language does ("01.08.2026", "341.000,25"; never a code column's values), the
  column's label over its name, the row limits in words ("1.000 Zeilen", not "1k rows"), and the
  tenant's database, named by its isolation key ``tenant_<AGS>``, as "Eigene Daten".
* **Number formats of new charts that follow the language**: Superset's default number format,
  "SMART_NUMBER", is built into its frontend with the English locale (``16.2k``, ``0.684``; neither
  ``D3_FORMAT`` nor any other setting reaches it). A new chart's starting form data (the explore API's
  answer without a saved chart) gets :data:`NEW_CHART_NUMBER_FORMATS` for the number-format controls
  it does not set yet; the frontend fills only missing controls with its defaults, so the editor
  starts with ``16.200`` and ``0,68`` and can still choose any format. Saved charts are left as saved.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

OVERRIDE_DIR = Path(__file__).resolve().parent / "translations"
_HTML_TAG = re.compile(rb"<html(?=[\s>])(?![^>]*\blang=)", re.IGNORECASE)

#: Contrast and focus on the embedded page (WCAG 2.1 AA 1.4.3, 2.4.7). Superset's theme tokens set
#: most colours; these are the places its stylesheet hard-codes a grey too light on white.
EMBEDDED_CSS = """
/* The vertical filter bar's list of filters is as tall as the viewport (100vh minus its buttons) plus
   an offset: in an iframe sized to its content that makes the content taller than the iframe, again
   after every resize (an endless growth). It takes the height of its filters instead; the panel
   around it still spans the dashboard. Checked by tests/superset/test_embedded_german.py. */
[data-test="filter-bar"] > .open { height: auto !important; min-height: 0 !important; }
[data-test="filter-bar"] > .open > div:nth-child(2) { height: auto !important; overflow: visible !important; }
.dashboard-component-chart-holder:focus-visible { outline: 3px solid #0b5394; outline-offset: 2px; }
.ant-select-selection-placeholder, .ant-picker-input > input::placeholder, .ant-input::placeholder,
.ant-select-selection-search-input::placeholder { color: #595959 !important; }
.ant-empty-description, .ant-typography-secondary, .ant-form-item-extra,
.date-label-content { color: #595959 !important; }
/* Empty table cells ("N/A": a withheld quartile, a metric without value) are grey #878787, 3.3:1 on the
   striped rows; this grey reaches 6.4:1 and still reads as "nothing here". */
td.dt-is-null { color: #595959 !important; }
/* A chart title longer than its card (German compounds on a 1366 px laptop: "Abschlussquot") wraps, with a
   hyphen where the browser knows the word (the page says lang="de"), instead of being cut off. */
.dashboard-component-chart-holder .header-title, .dashboard-component-chart-holder [data-test="editable-title"] {
  white-space: normal !important; overflow-wrap: anywhere; hyphens: auto; text-overflow: clip !important;
  height: auto !important; overflow: visible !important;
}
"""

#: Every chart holder becomes a focusable region named after its chart title (WCAG 2.1.1, 4.1.2).
EMBEDDED_SCRIPT = r"""
(function () {
  function name(holder) {
    var title = holder.querySelector("[data-test='editable-title'], .header-title, .chart-header .title");
    return title ? title.textContent.trim() : "";
  }
  function mark() {
    document.querySelectorAll(".dashboard-component-chart-holder").forEach(function (holder) {
      if (holder.getAttribute("tabindex") === null) {
        holder.setAttribute("tabindex", "0");
        holder.setAttribute("role", "region");
      }
      var label = name(holder);
      if (label && holder.getAttribute("aria-label") !== label) {
        holder.setAttribute("aria-label", label);
      }
    });
  }
  // Buttons named by aria-label/-labelledby: their icons are decoration (the name says it), and the
  // visible text must be part of the name (WCAG 2.5.3 Label in Name).
  function nameButtons() {
    document.querySelectorAll("[role='button'][aria-label], [role='button'][aria-labelledby]").forEach(function (b) {
      b.querySelectorAll("[role='img'].anticon:not([aria-hidden])").forEach(function (icon) {
        icon.setAttribute("aria-hidden", "true");
      });
      // "Angewandte Filter (1)" around a badge "1": axe reads "(1)" as punctuation, not as the "1" shown.
      var counted = /^(.*\S) \((\d+)\)$/.exec(b.getAttribute("aria-label") || "");
      if (counted) {
        b.setAttribute("aria-label", counted[1] + ": " + counted[2]);
      }
      var shown = b.querySelector(".date-label-content[id]");
      var by = b.getAttribute("aria-labelledby");
      if (shown && by && by.split(" ").indexOf(shown.id) < 0) {
        b.setAttribute("aria-labelledby", by + " " + shown.id);
      }
    });
  }
  function adjust() {
    mark();
    nameButtons();
  }
  new MutationObserver(adjust).observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", adjust);
})();
"""


#: The chart editor's filter labels (``[data-test=option-label]``) with column labels instead of column names.
EDITOR_SCRIPT = r"""
(function () {
  var WORDS = __WORDS__, NO_FILTER = __NO_FILTER__, EMPTY = __EMPTY__, OWN_DATA = __OWN_DATA__;
  var DATABASE = /\btenant_[0-9]{8}\b/g, LOCALE = __LOCALE__, ROWS = __ROWS__, GRID = __GRID__, SHORT = __SHORT__;
  var UNTITLED = __UNTITLED__;
  // The data pane under a chart in the editor, and SQL Lab's results, show raw values: "2026-08-01 00:00:00",
  // "341000.25". They are written as the page's language writes them; a code column (keys, AGS, ids, years)
  // and whole numbers under five digits are left as they are, so no key turns into "99.102.013…".
  var ISO = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?$/;
  var DECIMAL = /^-?\d+\.\d+$/, INTEGER = /^-?[1-9]\d{4,11}$/, GROUPED = /^-?\d{1,3}(,\d{3})+(\.\d+)?$/;
  var CODE_COLUMN = /(^|_)(key|ags|ars|id|code|no|nr|year|jahr)$/i;
  var NUMBER = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 10 });
  var DAY = new Intl.DateTimeFormat(LOCALE, { day: "2-digit", month: "2-digit", year: "numeric", timeZone: "UTC" });
  var MOMENT = new Intl.DateTimeFormat(LOCALE, { day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit",
                                                 minute: "2-digit", second: "2-digit", timeZone: "UTC" });
  function cellText(text, column) {
    var parts = ISO.exec(text);
    if (parts) {
      var when = new Date(Date.UTC(+parts[1], parts[2] - 1, +parts[3], +parts[4], +parts[5], +parts[6]));
      return (parts[4] + parts[5] + parts[6] === "000000" ? DAY : MOMENT).format(when);
    }
    if (CODE_COLUMN.test(column || "")) return text;
    if (GROUPED.test(text)) return NUMBER.format(Number(text.replace(/,/g, "")));  // Superset's "16,482"
    return DECIMAL.test(text) || INTEGER.test(text) ? NUMBER.format(Number(text)) : text;
  }
  // The row count over a result ("5.03k Zeilen": Superset's English short form) and the grid's own overlays.
  function shortCount(text) {
    var parts = /^(\d+(?:\.\d+)?)([kM]) (.+)$/.exec(text);
    return parts && SHORT[parts[2]] ? NUMBER.format(Number(parts[1])) + " " + SHORT[parts[2]] + " " + parts[3] : text;
  }
  // What this script wrote into a cell: written once, never read again as a raw value (German "16.482"
  // is sixteen thousand, not the English decimal it resembles). The grid writes a new text when it reuses
  // the cell for another row, and that is rewritten.
  var written = new WeakMap();
  function resultCells() {
    document.querySelectorAll(".ag-cell[col-id] .ag-cell-value").forEach(function (value) {
      var node = value.firstChild;
      if (!node || node.nodeType !== 3 || value.childNodes.length !== 1) return;
      if (written.get(node) === node.nodeValue) return;
      var text = cellText(node.nodeValue, value.closest(".ag-cell").getAttribute("col-id"));
      written.set(node, text);
      if (text !== node.nodeValue) node.nodeValue = text;
    });
    document.querySelectorAll(".ag-header-cell[col-id] .ag-header-cell-text").forEach(function (header) {
      var column = header.closest(".ag-header-cell").getAttribute("col-id");
      if (header.textContent === column && WORDS[column]) header.textContent = WORDS[column];
    });
    rewrite(".ant-select-selection-item, .ant-select-item-option-content", function (text) {
      var limit = /^(\d+)k \S+$/.exec(text);  // "1k rows"; SQL Lab: "1k Zeilen"
      return limit ? ROWS.replace("%s", NUMBER.format(limit[1] * 1000)) : text;
    });
    rewrite("[data-test='row-count-label']", shortCount);
    // SQL Lab names a new tab "Untitled Query 1" without the pack (the name is Superset's state; only the
    // text shown changes).
    rewrite(".ant-tabs-tab", function (text) {
      var tab = /^Untitled Query (\d+)$/.exec(text);
      return tab ? UNTITLED + " " + tab[1] : text;
    });
    rewrite(".ag-overlay", function (text) { return GRID[text] || text; });
  }
  var SUBJECT = /^([a-z_][a-z0-9_]*)(?=\s|$)/, BETWEEN = /(\u2264 )([a-z_][a-z0-9_]*)( <)/;
  function untranslated(text) {
    return text.replace(/\(No filter\)$/, "(" + NO_FILTER + ")").replace(/^No filter$/, NO_FILTER)
      .replace(/: No filter$/, ": " + NO_FILTER);
  }
  function relabel(text) {
    return untranslated(text.replace(SUBJECT, function (all, word) { return WORDS[word] || all; })
      .replace(BETWEEN, function (all, before, word, after) {
        return WORDS[word] ? before + WORDS[word] + after : all;
      }));
  }
  function rewrite(selector, change) {
    document.querySelectorAll(selector).forEach(function (element) {
      var walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
      for (var node = walker.nextNode(); node; node = walker.nextNode()) {
        var text = change(node.nodeValue);
        if (text !== node.nodeValue) node.nodeValue = text;
      }
    });
  }
  // Filter labels in the chart editor; "No filter" also in popovers (a dashboard chart's filter badge);
  // the "N/A" the table chart writes into an empty cell itself. Text nodes are changed in place, so React
  // still owns the nodes it rendered.
  // The tenant's database is named by its isolation key (tenant_<AGS>: roles, permissions and the tenant
  // boundary rely on it); wherever Superset shows that name (SQL Lab's database choice, a dataset's
  // details, the dataset list) the editor reads "Eigene Daten". Only new text is looked at (the nodes a
  // mutation added or changed), never SQL in the editor, and titles too, as tooltips read them.
  function ownData(text) { return text.indexOf("tenant_") < 0 ? text : text.replace(DATABASE, OWN_DATA); }
  function renameDatabase(root) {
    if (root.nodeType === 3) {
      var parent = root.parentElement;
      if (parent && !parent.closest(".ace_editor")) {
        var text = ownData(root.nodeValue);
        if (text !== root.nodeValue) root.nodeValue = text;
      }
      return;
    }
    if (root.nodeType !== 1 || root.closest(".ace_editor")) return;
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (var node = walker.nextNode(); node; node = walker.nextNode()) renameDatabase(node);
    [root].concat(Array.prototype.slice.call(root.querySelectorAll("[title*='tenant_']"))).forEach(function (el) {
      var title = el.getAttribute("title");
      if (title && title.indexOf("tenant_") >= 0) el.setAttribute("title", ownData(title));
    });
  }
  function adjust(records) {
    rewrite("[data-test='option-label']", relabel);
    rewrite(".ant-popover, .ant-tooltip", untranslated);
    rewrite("td.dt-is-null", function (text) { return text === "N/A" ? EMPTY : text; });
    resultCells();
    records.forEach(function (record) {
      if (record.type === "characterData") renameDatabase(record.target);
      else record.addedNodes.forEach(renameDatabase);
    });
  }
  if (document.body) renameDatabase(document.body);
  new MutationObserver(adjust).observe(document.documentElement,
                                       { childList: true, subtree: true, characterData: true });
})();
"""


#: Texts AG Grid (the editor's data pane, SQL Lab's results) writes itself, in English, without Superset's pack.
GRID_TEXTS = {"de": {"No Matching Rows": "Keine passenden Zeilen", "No Rows To Show": "Keine Zeilen vorhanden",
                     "Loading...": "Wird geladen …"}}
#: Superset's short counts ("5.03k"), as the language abbreviates thousands and millions (Duden: Tsd., Mio.).
SHORT_UNITS = {"de": {"k": "Tsd.", "M": "Mio."}}


#: How the tenant's database (named ``tenant_<AGS>``, its isolation key) is shown to editors; German, with
#: its English in ``translations/dashboards.en.json``.
OWN_DATA = "Eigene Daten"


@lru_cache(maxsize=8)
def column_labels(lang: str) -> dict[str, str]:
    """Column name → label of the platform's datasets (``dashboards/datasets.json``) in ``lang``."""
    spec = json.loads((Path(__file__).resolve().parent / "dashboards" / "datasets.json").read_text(encoding="utf-8"))
    texts = template_texts(lang)
    return {column: texts.get(label, label) for column, label in spec["labels"].items()}


@lru_cache(maxsize=8)
def editor_script(lang: str) -> str:
    """:data:`EDITOR_SCRIPT` with the labels of ``lang`` and its words for "No filter" and "N/A" (from the
    language pack: ``translations/<lang>.json`` says "keine Angabe")."""
    messages = json.loads(language_pack(lang) or b'{"locale_data": {"superset": {}}}')["locale_data"]["superset"]

    def word(msgid: str) -> str:
        return json.dumps((messages.get(msgid) or [msgid])[0] or msgid, ensure_ascii=False)

    own_data = template_texts(lang).get(OWN_DATA, OWN_DATA)
    rows = (messages.get("%s row") or ["%s row", "%s rows"])[-1] or "%s rows"  # the plural form
    return (EDITOR_SCRIPT.replace("__WORDS__", json.dumps(column_labels(lang), ensure_ascii=False))
            .replace("__NO_FILTER__", word("No filter")).replace("__EMPTY__", word("N/A"))
            .replace("__OWN_DATA__", json.dumps(own_data, ensure_ascii=False))
            .replace("__LOCALE__", json.dumps(lang)).replace("__ROWS__", json.dumps(rows, ensure_ascii=False))
            .replace("__GRID__", json.dumps(GRID_TEXTS.get(lang, {}), ensure_ascii=False))
            .replace("__SHORT__", json.dumps(SHORT_UNITS.get(lang, {}), ensure_ascii=False))
            .replace("__UNTITLED__", word("Untitled Query")))


def _catalogue(name: str) -> dict[str, Any]:
    """A JSON object of texts in ``translations/`` without its comment keys (``_…``); empty when missing."""
    path = OVERRIDE_DIR / name
    if not path.is_file():
        return {}
    found = json.loads(path.read_text(encoding="utf-8"))
    return {key: text for key, text in found.items() if not key.startswith("_")}


@lru_cache(maxsize=8)
def overrides(lang: str) -> dict[str, str | list[str]]:
    """Our corrections for ``lang`` (msgid → msgstr, or its plural forms); empty when there are none."""
    return _catalogue(f"{lang}.json")


def _wheel_pack(lang: str) -> dict[str, Any] | None:
    import superset

    path = Path(superset.__file__).parent / "translations" / lang / "LC_MESSAGES" / "messages.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


@lru_cache(maxsize=8)
def unreviewed_msgids(lang: str) -> frozenset[str]:
    """The msgids whose translation Superset's catalogue (``messages.po``) marks ``fuzzy``.

    Those are msgmerge's guesses from similar strings that nobody reviewed ("Sign in" → "Nicht in",
    "10 seconds" → "30 Sekunden", "More Options" → "Heatmap-Optionen"; 724 in Superset 6.1's German),
    and the wheel's ``messages.json`` serves them as translations. :func:`language_pack` leaves them out
    unless ``translations/<lang>.json`` has a reviewed text for them.
    """
    import superset
    from babel.messages.pofile import read_po

    path = Path(superset.__file__).parent / "translations" / lang / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        return frozenset()
    with path.open("rb") as po:
        return frozenset(m.id if isinstance(m.id, str) else m.id[0] for m in read_po(po) if m.id and m.fuzzy)


@lru_cache(maxsize=8)
def language_pack(lang: str) -> bytes | None:
    """The frontend's language pack for ``lang``: Superset's reviewed translations and ours (overrides
    and reviewed texts for its unreviewed ones, :func:`unreviewed_msgids`), as JSON bytes; None when
    Superset has no pack for that language."""
    pack = _wheel_pack(lang)
    if pack is None:
        return None
    messages = pack["locale_data"]["superset"]
    for msgid in unreviewed_msgids(lang):
        messages.pop(msgid, None)
    messages.update({msgid: text if isinstance(text, list) else [text] for msgid, text in overrides(lang).items()})
    return json.dumps(pack, ensure_ascii=False).encode("utf-8")


def unknown_overrides(lang: str) -> list[str]:
    """Override msgids that Superset's pack does not contain (a typo, or a string Superset dropped)."""
    pack = _wheel_pack(lang) or {"locale_data": {"superset": {}}}
    return sorted(set(overrides(lang)) - set(pack["locale_data"]["superset"]))


#: Answers of the dashboard API that carry the ready-made dashboards' texts.
_DASHBOARD_API = re.compile(r"^/api/v1/dashboard/[^/]+(?:/charts|/datasets)?/?$")
#: Keys whose string value is shown as it is: titles, names, markdown, descriptions, verbose names, the
#: datasets' names (their table name is the German name users see).
_TEXT_KEYS = frozenset({"dashboard_title", "slice_name", "sliceName", "sliceNameOverride", "text", "code", "name",
                        "description", "verbose_name", "table_name", "datasource_name"})
#: Keys holding JSON in a string (the layout and the native filters) and mappings of display names.
_JSON_STRING_KEYS = frozenset({"position_json", "json_metadata"})
_NAME_MAP_KEYS = frozenset({"verbose_map"})
#: What a chart queries with: left alone (a changed metric label would be a changed query).
_QUERY_KEYS = frozenset({"form_data", "params", "query_context"})


@lru_cache(maxsize=8)
def template_texts(lang: str) -> dict[str, str]:
    """The ready-made dashboards' texts in ``lang`` (German text → text); empty for German or unknown."""
    return _catalogue(f"dashboards.{lang}.json")


def translate_texts(value: Any, texts: dict[str, str], key: str | None = None) -> Any:
    """``value`` (a decoded API answer) with the display texts under :data:`_TEXT_KEYS` replaced."""
    if isinstance(value, dict):
        if key in _NAME_MAP_KEYS:
            return {k: texts.get(v, v) if isinstance(v, str) else v for k, v in value.items()}
        return {k: v if k in _QUERY_KEYS else translate_texts(v, texts, k) for k, v in value.items()}
    if isinstance(value, list):
        return [translate_texts(item, texts, key) for item in value]
    if isinstance(value, str):
        if key in _JSON_STRING_KEYS:
            try:
                inner = json.loads(value)
            except ValueError:
                return value
            return json.dumps(translate_texts(inner, texts), ensure_ascii=False)
        if key in _TEXT_KEYS:
            return texts.get(value, value)
    return value


def dashboard_language() -> str:
    """The language the embedded dashboard was opened in (see the module's description)."""
    from urllib.parse import parse_qs, urlsplit

    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.path.startswith("/embedded/"):
        asked = parse_qs(referer.query).get("_l_")
        if asked:
            return asked[0]
    return _page_language()


def _before_dashboard_api() -> None:
    if request.path.startswith("/embedded/") and request.args.get("_l_"):
        from flask import current_app, session

        if request.args["_l_"] in current_app.config.get("LANGUAGES", {}):
            session["locale"] = request.args["_l_"]
    elif _DASHBOARD_API.match(request.path) and template_texts(dashboard_language()):
        # The browser's cached answer is in the other language; the ETag does not say which.
        request.environ.pop("HTTP_IF_NONE_MATCH", None)
        request.environ.pop("HTTP_IF_MODIFIED_SINCE", None)


def _translate_dashboard_api(response: Response) -> Response:
    if (response.status_code != 200 or response.mimetype != "application/json" or response.direct_passthrough
            or not _DASHBOARD_API.match(request.path)):
        return response
    texts = template_texts(dashboard_language())
    if not texts:
        return response
    response.set_data(json.dumps(translate_texts(json.loads(response.get_data()), texts), ensure_ascii=False))
    # Not the German answer's validators: a cache must not take one for the other.
    for header in ("ETag", "Last-Modified"):
        response.headers.pop(header, None)
    response.headers["Vary"] = ", ".join(filter(None, (response.headers.get("Vary"), "Referer", "Cookie")))
    return response


def _page_language() -> str:
    from flask_babel import get_locale

    return str(get_locale() or "de").split("_")[0]


def _adjust_html(response: Response) -> Response:
    if (response.mimetype != "text/html" or response.direct_passthrough or response.is_streamed
            or response.status_code >= 300):
        return response
    body = response.get_data()
    body = _HTML_TAG.sub(f'<html lang="{_page_language()}"'.encode(), body, count=1)
    nonce = getattr(request, "csp_nonce", "")
    extra = f'<script nonce="{nonce}">{editor_script(_page_language())}</script>'
    if request.path.startswith("/embedded/"):
        extra += f'<style>{EMBEDDED_CSS}</style><script nonce="{nonce}">{EMBEDDED_SCRIPT}</script>'
    body = body.replace(b"</head>", extra.encode() + b"</head>", 1)
    response.set_data(body)
    return response


#: The number-format controls whose frontend default is the English "SMART_NUMBER" (Superset 6.1's
#: shared ``y_axis_format`` and the controls built from it), and the format a new chart starts with
#: instead: thousands grouped, at most two decimals, both in the page's locale (``D3_FORMAT``).
NEW_CHART_NUMBER_FORMAT = ",.2~f"
#: Superset 6.1's number-format controls whose default is SMART_NUMBER (``x_axis_format`` is left out: in
#: some charts it is a date format).
NEW_CHART_NUMBER_FORMATS = dict.fromkeys(("y_axis_format", "number_format", "y_axis_format_secondary",
                                          "x_axis_number_format"), NEW_CHART_NUMBER_FORMAT)


def new_chart_defaults(answer: dict[str, Any]) -> dict[str, Any]:
    """The explore API's decoded ``answer`` with :data:`NEW_CHART_NUMBER_FORMATS` for an unsaved chart.

    Only keys missing from ``form_data`` are added (an editor's own choice, kept in an unsaved
    exploration's state, stays); an answer for a saved chart (``slice`` set) is returned unchanged.
    """
    result = answer.get("result")
    if not isinstance(result, dict) or result.get("slice") or not isinstance(result.get("form_data"), dict):
        return answer
    form_data = result["form_data"]
    if form_data.get("slice_id"):
        return answer
    for key, value in NEW_CHART_NUMBER_FORMATS.items():
        form_data.setdefault(key, value)
    return answer


def _new_chart_number_formats(response: Response) -> Response:
    if (request.path.rstrip("/") != "/api/v1/explore" or response.status_code != 200
            or response.mimetype != "application/json" or response.direct_passthrough):
        return response
    response.set_data(json.dumps(new_chart_defaults(json.loads(response.get_data())), ensure_ascii=False))
    return response


def install(app: Flask) -> None:
    """Register the hooks above on Superset's app (FLASK_APP_MUTATOR)."""
    app.before_request(_before_dashboard_api)
    app.after_request(_adjust_html)
    app.after_request(_translate_dashboard_api)
    app.after_request(_new_chart_number_formats)
