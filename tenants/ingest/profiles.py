"""Mapping profiles: a declarative description of a vendor's export (docs/data-format.md).

A profile is a JSON document (shipped ones live in ``tenants/ingest/profiles/``; a data source
may carry its own under ``config["mapping"]``) with these keys, all optional except ``payload``:

``payload``         ``events`` or ``aggregates``: what the rows become
``delimiter``       CSV delimiter tried first; default: found from the header (``;`` ``,`` tab ``|``)
``encoding``        ``auto`` (default: detected, see :func:`detect_encoding`) or a codec
``date_format``     ``strptime`` format of day columns (default ISO ``%Y-%m-%d``)
``datetime_format`` ``strptime`` format of timestamps (default ISO 8601)
``decimal_comma``   numbers are written ``1.234,5`` (German office files)
``columns``         canonical column -> source column header
``constants``       canonical column -> fixed value (e.g. the service of a single-purpose app)
``values``          canonical column -> {source value -> canonical value}
``measures``        source column -> measure, for wide count exports: each becomes one row

Files are read as streams (``csv`` over a decoding file object, openpyxl in read-only mode), so
memory stays flat however long the file is. How a file is read ("dialect") is found from the file
itself, the way Excel, LibreOffice and municipal exports save tables: the encoding (BOM, UTF-8,
otherwise charset-normalizer's ranking of the legacy Windows, DOS and Mac code pages), Excel's
``sep=`` hint, the delimiter and the header row (the first row, among the first 30, that holds the
columns the profile expects, so title rows above the table are skipped). Row numbers count as the
spreadsheet shows them: every record is a row (a quoted line break stays inside its cell), the
``sep=`` line is none (Excel hides it), completely empty rows are no rows of the table.

Every problem found here is reported in the file's own terms: :class:`ProfileError` for a file
that cannot be read at all (message id in English with its arguments, shown in German), and per
row a ``problem`` that the loader records as the row's error (see :class:`Mapper`).
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from tenants.canonical import PAYLOADS, REQUIRED

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
CHUNK = 1 << 20
#: Bytes read to find the dialect and the header (a title block above a table is a few lines).
HEAD_BYTES = 256 * 1024
HEADER_SEARCH_ROWS = 30
DELIMITERS = (";", ",", "\t", "|")
#: 8-bit code pages offices still produce: Windows (Excel "CSV"), DOS (Excel "CSV (MS-DOS)"), old Macs.
LEGACY_ENCODINGS = ("cp1252", "cp850", "mac_roman")
#: Separator of column, reason and arguments in an error string (the loader splits on it in SQL).
SEP = "\x1f"
SEP_HINT = re.compile(r'^"?sep=(.)"?\s*$', re.IGNORECASE)
GERMAN_LETTERS = re.compile("[äöüÄÖÜß]")


class ProfileError(ValueError):
    """The file or the profile cannot be used at all (as opposed to single bad rows).

    ``message`` is an English message id with ``%(name)s`` placeholders (translated where it is
    shown), ``args`` its values; ``str()`` gives the English text for logs.
    """

    def __init__(self, message: str, **args: Any):
        super().__init__(message % args if args else message)
        self.message, self.args_dict = message, args


@dataclass(frozen=True)
class Profile:
    name: str
    payload: str
    title: str = ""
    description: str = ""
    delimiter: str | None = None
    encoding: str = "auto"
    date_format: str | None = None
    datetime_format: str | None = None
    decimal_comma: bool = False
    columns: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    measures: dict[str, str] = field(default_factory=dict)

    @property
    def canonical_columns(self) -> tuple[str, ...]:
        return PAYLOADS[self.payload]

    def header_for(self, canonical: str) -> str:
        """The header a user sees in their file for a canonical column (error reports)."""
        if canonical in ("measure", "value") and self.measures:
            return ", ".join(self.measures)
        return self.columns.get(canonical, canonical)

    def expected_headers(self) -> tuple[list[str], list[str]]:
        """(required, optional) column headers of a file in this profile."""
        required_canonical = [c for c in REQUIRED[self.payload] if c not in self.constants]
        if not self.columns and not self.measures:
            return required_canonical, [c for c in self.canonical_columns if c not in required_canonical]
        required = [self.columns[c] for c in required_canonical if c in self.columns] + list(self.measures)
        return required, [h for c, h in self.columns.items() if h not in required]

    @property
    def is_plain_canonical(self) -> bool:
        """No mapping at all: a canonical CSV can stream straight into COPY."""
        return not (self.columns or self.constants or self.values or self.measures or self.date_format
                    or self.datetime_format or self.decimal_comma)


def profile_from_dict(name: str, data: dict[str, Any]) -> Profile:
    known = set(Profile.__dataclass_fields__) - {"name"}
    unknown = set(data) - known
    if unknown:
        raise ProfileError("Unknown keys in the mapping profile: %(keys)s", keys=", ".join(sorted(unknown)))
    if data.get("payload") not in PAYLOADS:
        raise ProfileError("The mapping profile's payload must be one of %(payloads)s", payloads=", ".join(PAYLOADS))
    return Profile(name=name, **data)


def shipped_profiles() -> dict[str, Profile]:
    return {p.stem: profile_from_dict(p.stem, json.loads(p.read_text())) for p in sorted(PROFILE_DIR.glob("*.json"))}


def profile_for(source_profile: str, config: dict[str, Any] | None = None) -> Profile:
    """The profile of a data source: its own mapping if it has one, else the shipped one it names."""
    if config and config.get("mapping"):
        return profile_from_dict(source_profile, config["mapping"])
    profiles = shipped_profiles()
    if source_profile not in profiles:
        raise ProfileError("No mapping profile named %(name)s", name=source_profile)
    return profiles[source_profile]


def header_key(name: Any) -> str:
    """A header cell as it is compared: surrounding and repeated white space (also line breaks and
    non-breaking spaces in Excel headers) and case do not matter."""
    return " ".join(("" if name is None else str(name)).replace("\ufeff", "").split()).casefold()


# -- the file as a table ------------------------------------------------------------------------

@dataclass
class Table:
    """A file read as a table: its header and its rows as (spreadsheet row number, cells)."""

    header: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    header_row: int = 1
    encoding: str | None = None
    delimiter: str | None = None
    #: Bytes before the first data row when the header is the file's first line (after a BOM or a
    #: ``sep=`` hint): a canonical file then streams into COPY from there.
    data_offset: int | None = None

    def close(self) -> None:
        close = getattr(self.rows, "close", None)
        if close:
            close()


def _header_match(records: list[list[Any]], required: set[str], expected: set[str]) -> tuple[int | None, int, bool]:
    """(index of the header record, how many expected names it holds, whether it holds every required one)."""
    best: tuple[int | None, int, bool] = (None, 0, False)
    for index, record in enumerate(records[:HEADER_SEARCH_ROWS]):
        keys = {header_key(cell) for cell in record}
        if required and required <= keys:
            return index, len(keys & expected), True
        score = len(keys & expected)
        if score > best[1]:
            best = (index, score, False)
    return best


def _expected_keys(profile: Profile) -> tuple[set[str], set[str]]:
    required, optional = profile.expected_headers()
    required_keys = {header_key(h) for h in required}
    return required_keys, required_keys | {header_key(h) for h in optional}


# -- encodings ----------------------------------------------------------------------------------

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _decodes_whole(path: Path, encoding: str) -> bool:
    """Whether the whole file decodes (read in chunks at C speed, flat memory)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _non_ascii_sample(path: Path, limit: int = HEAD_BYTES) -> bytes:
    """The file's lines that hold non-ASCII bytes, up to ``limit`` bytes: what tells code pages apart."""
    sample = bytearray()
    with path.open("rb") as fh:
        for line in fh:
            if max(line, default=0) > 0x7F:
                sample += line
                if len(sample) >= limit:
                    break
    return bytes(sample)


def detect_encoding(path: Path, wanted: str = "auto", expected: set[str] | None = None) -> str:
    """The file's encoding: a BOM, else UTF-8 if the whole file is UTF-8, else a legacy code page.

    A code page is chosen by charset-normalizer among those offices produce (Windows cp1252, DOS
    cp850, Mac Roman), on the lines that hold non-ASCII bytes. Short German texts often decode
    without a flaw in several of them ("Straße" is "Straáe" in cp1252 read from cp850), so among
    the candidates charset-normalizer ranks equal, the one whose decoding shows the header the
    profile expects wins, then the one with the most German letters (ä ö ü ß). The chosen code page
    must decode the whole file.
    """
    if wanted != "auto":
        return wanted
    with path.open("rb") as fh:
        head = fh.read(4)
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    if _decodes_whole(path, "utf-8"):
        return "utf-8"
    from charset_normalizer import from_bytes

    sample = _non_ascii_sample(path)
    ranked = [m.encoding for m in from_bytes(sample, cp_isolation=list(LEGACY_ENCODINGS))] or list(LEGACY_ENCODINGS)
    ranked = [e for e in ranked if e in LEGACY_ENCODINGS] + [e for e in LEGACY_ENCODINGS if e not in ranked]
    with path.open("rb") as fh:
        first_lines = fh.read(HEAD_BYTES)

    def preference(item: tuple[int, str]) -> tuple[int, int, int]:
        rank, encoding = item
        text = first_lines.decode(encoding, errors="replace")
        shows_header = bool(expected) and any(key in header_key(text) for key in expected if not key.isascii())
        return (0 if shows_header else 1, -len(GERMAN_LETTERS.findall(sample.decode(encoding, errors="replace"))),
                rank)

    for _, encoding in sorted(enumerate(ranked), key=preference):
        if _decodes_whole(path, encoding):
            return encoding
    return "cp850"  # decodes every byte


ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "utf-32": "UTF-32",
                  "cp1252": "Windows-1252", "cp850": "DOS (cp850)", "mac_roman": "Mac Roman"}


# -- CSV ----------------------------------------------------------------------------------------

def _text_head(path: Path, encoding: str) -> str:
    with path.open("rb") as fh:
        raw = fh.read(HEAD_BYTES)
    text = raw.decode(encoding, errors="replace")
    return text.lstrip("\ufeff")


def _records(text: str, delimiter: str) -> list[list[str]]:
    records = []
    try:
        for record in csv.reader(text.splitlines(keepends=True), delimiter=delimiter):
            records.append(record)
            if len(records) >= HEADER_SEARCH_ROWS:
                break
    except csv.Error:
        pass  # a cut-off last line of the sample
    return records


def _choose_dialect(head: str, profile: Profile, hint: str | None) -> tuple[str, int]:
    """(delimiter, index of the header record): the delimiter that shows the profile's header.

    Without any expected column in sight (not the profile's file at all), clevercsv detects the
    dialect from the data's consistency, so the message can at least say which columns were found.
    """
    required, expected = _expected_keys(profile)
    candidates = [hint] if hint else list(dict.fromkeys([d for d in (profile.delimiter, *DELIMITERS) if d]))
    best: tuple[int, str, int] | None = None
    for delimiter in candidates:
        index, score, complete = _header_match(_records(head, delimiter), required, expected)
        if complete:
            return delimiter, index
        if index is not None and (best is None or score > best[0]):
            best = (score, delimiter, index)
    if best:
        return best[1], best[2]
    delimiter = hint or _clevercsv_delimiter(head) or profile.delimiter or ";"
    records = _records(head, delimiter)
    return delimiter, next((i for i, r in enumerate(records) if any(c.strip() for c in r)), 0)


def _clevercsv_delimiter(head: str) -> str | None:
    import clevercsv

    try:
        dialect = clevercsv.Detector().detect(head[:64 * 1024])
    except Exception:  # noqa: BLE001 - detection is best effort for an error message
        return None
    return dialect.delimiter if dialect and dialect.delimiter else None


def _data_offset(path: Path, encoding: str, hint: bool) -> int | None:
    """Bytes up to the first data row, when the header is the first line (the COPY fast path)."""
    if encoding not in ("utf-8", "utf-8-sig", "cp1252"):
        return None
    with path.open("rb") as fh:
        offset = 3 if fh.read(3) == codecs.BOM_UTF8 else 0
        fh.seek(offset)
        for _ in range(2 if hint else 1):
            line = fh.readline(HEAD_BYTES)
            if not line.endswith(b"\n") or b'"' in line:
                return None
            offset += len(line)
    return offset


def read_csv(path: Path, profile: Profile) -> Table:
    """The file as a table, in the dialect found in it (module docstring)."""
    required, expected = _expected_keys(profile)
    encoding = detect_encoding(path, profile.encoding, expected)
    head = _text_head(path, encoding)
    first_line = head.splitlines()[0] if head else ""
    match = SEP_HINT.match(first_line)
    hint = match.group(1) if match else None
    body = head[len(first_line):].lstrip("\r\n") if hint else head
    delimiter, header_index = _choose_dialect(body, profile, hint)
    handle = path.open(encoding=encoding, newline="", errors="strict")
    reader = csv.reader(handle, delimiter=delimiter)

    def records() -> Iterator[tuple[int, list[str]]]:
        try:
            if hint:
                next(reader, None)
            yield from enumerate(reader, start=1)
        except UnicodeDecodeError as exc:
            raise ProfileError("The file is not in the encoding %(encoding)s (about byte %(position)s).",
                               encoding=ENCODING_NAMES.get(encoding, encoding), position=exc.start) from None
        except csv.Error as exc:
            raise ProfileError("The file is no table that can be read (%(detail)s).", detail=str(exc)) from None
        finally:
            handle.close()

    stream = records()
    header: list[str] | None = None
    header_row = 1
    for number, record in stream:
        if number - 1 == header_index:
            header, header_row = [cell.strip().lstrip("\ufeff") for cell in record], number
            break
    if header is None:
        stream.close()
        raise ProfileError("The file is empty.")

    def rows() -> Iterator[tuple[int, list[str]]]:
        for number, record in stream:
            if any(cell.strip() for cell in record):
                yield number, record

    offset = _data_offset(path, encoding, bool(hint)) if header_index == 0 else None
    return Table(header, _closing(rows(), stream), header_row, encoding, delimiter, offset)


def _closing(rows: Iterator, *others: Iterator) -> Iterator:
    """``rows``; closing it closes the streams it reads from."""
    try:
        yield from rows
    finally:
        for other in others:
            other.close()


# -- Excel --------------------------------------------------------------------------------------

def read_xlsx(path: Path, profile: Profile) -> Table:
    """The worksheet that holds the profile's header (the first one otherwise), from its header row on."""
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, KeyError, OSError) as exc:
        raise ProfileError("This is no Excel workbook (.xlsx); save it as .xlsx or CSV.") from exc
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged file
        raise ProfileError("The Excel file cannot be read (%(detail)s).", detail=type(exc).__name__) from exc
    required, expected = _expected_keys(profile)
    chosen = None
    for sheet in book.worksheets:
        sheet.reset_dimensions()  # some writers record wrong dimensions; read what is there
        head = [list(r) for r in sheet.iter_rows(min_row=1, max_row=HEADER_SEARCH_ROWS, values_only=True)]
        index, score, complete = _header_match(head, required, expected)
        if complete or (index is not None and (chosen is None or score > chosen[2])):
            chosen = (sheet, index, score)
            if complete:
                break
    if chosen is None:
        sheet = book.worksheets[0] if book.worksheets else None
        first = next((i for i, r in enumerate(sheet.iter_rows(min_row=1, max_row=HEADER_SEARCH_ROWS,
                                                                   values_only=True))
                      if any(c not in (None, "") for c in r)), None) if sheet else None
        if first is None:
            book.close()
            raise ProfileError("The worksheet is empty.")
        chosen = (sheet, first, 0)
    sheet, header_index, _ = chosen
    values = sheet.iter_rows(min_row=header_index + 1, values_only=True)
    header = ["" if h is None else str(h).strip() for h in next(values)]

    def rows() -> Iterator[tuple[int, list[Any]]]:
        try:
            for number, row in enumerate(values, start=header_index + 2):
                if any(cell not in (None, "") and not (isinstance(cell, str) and not cell.strip()) for cell in row):
                    yield number, list(row)
        finally:
            book.close()

    return Table(header, rows(), header_index + 1)


def json_rows(records: Iterable[dict[str, Any]], first_row: int = 1) -> Table:
    """Push API objects as a table, numbered from ``first_row`` (events first, then aggregates)."""
    records = list(records)
    header: list[str] = []
    for record in records:
        for key in record:
            if key not in header:
                header.append(key)
    return Table(header, ((i, [r.get(k) for k in header]) for i, r in enumerate(records, start=first_row)), 0)


def read_table(path: Path, payload_format: str, profile: Profile) -> Table:
    return read_xlsx(path, profile) if payload_format == "xlsx" else read_csv(path, profile)


# -- the header against the profile -------------------------------------------------------------

def check_header(profile: Profile, table: Table) -> None:
    """Fail the whole file early when a column the profile needs is missing (in the file's terms)."""
    present = {header_key(h) for h in table.header}
    required, optional = profile.expected_headers()
    missing = [h for h in required if header_key(h) not in present]
    found = ", ".join(h for h in table.header if h) or "–"
    if not profile.columns and not profile.measures:
        known = {header_key(c) for c in profile.canonical_columns}
        unknown = [h for h in table.header if h and header_key(h) not in known]
        if unknown:
            raise ProfileError("The file has columns the format does not know: %(unknown)s. "
                               "Known columns: %(known)s.", unknown=", ".join(unknown),
                               known=", ".join(profile.canonical_columns))
    if missing:
        raise ProfileError("Columns are missing: %(missing)s. Found: %(found)s (header in row %(row)s).",
                           missing=", ".join(missing), found=found, row=table.header_row)


# -- cells to canonical values ------------------------------------------------------------------

_TEXT_FORMULA = re.compile(r'^="(.*)"$', re.DOTALL)  # Excel's way to keep digits as text in a CSV
_SHORTENED = re.compile(r"^[0-9]+(?:[.,][0-9]+)?[eE]\+?[0-9]+$")
_SPACES = re.compile(r"[\s\u00a0\u202f]")
NO_SUCH_DATE = "no such date"


def _plain(value: Any) -> str:
    """A cell as text: numbers without a spurious ``.0`` (Excel keeps digits as floats)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value).strip()
    formula = _TEXT_FORMULA.match(text)
    return formula.group(1).strip() if formula else text


def _number(value: Any, decimal_comma: bool) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _plain(value)
    text = _SPACES.sub("", _plain(value))
    if decimal_comma:
        text = text.replace(".", "").replace(",", ".")
    if re.fullmatch(r"[0-9]+\.0+", text):
        text = text.split(".")[0]
    return text


_DIRECTIVES = {"d": r"[0-9]{1,2}", "m": r"[0-9]{1,2}", "Y": r"[0-9]{4}", "y": r"[0-9]{2}", "H": r"[0-9]{1,2}",
               "I": r"[0-9]{1,2}", "M": r"[0-9]{1,2}", "S": r"[0-9]{1,2}", "f": r"[0-9]{1,6}", "p": r"[AaPp][Mm]",
               "z": r"(?:Z|[+-][0-9]{2}:?[0-9]{2})", "b": r"\w+", "B": r"\w+", "%": "%"}


def _shape(fmt: str) -> re.Pattern:
    """A regular expression for the text a ``strptime`` format reads, ignoring which dates exist."""
    parts, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            parts.append(_DIRECTIVES.get(fmt[i + 1], ".+?"))
            i += 2
        else:
            parts.append(re.escape(fmt[i]))
            i += 1
    return re.compile("".join(parts))


def _parse_time(text: str, fmt: str, as_day: bool) -> tuple[str, tuple | None]:
    formats = [fmt] + ([fmt + ":%S"] if fmt.endswith("%M") else [])
    for candidate in formats:
        try:
            parsed = datetime.strptime(text, candidate)
        except ValueError:
            continue
        return (parsed.date() if as_day else parsed).isoformat(), None
    if any(_shape(candidate).fullmatch(text) for candidate in formats):
        return "", (NO_SUCH_DATE, None)
    reason = "not a date in the format %(format)s" if as_day else "not a date and time in the format %(format)s"
    return "", (reason, {"format": fmt})


def _time_value(value: Any, fmt: str | None, as_day: bool) -> tuple[str, tuple | None]:
    if isinstance(value, datetime):
        return (value.date() if as_day else value).isoformat(), None
    if isinstance(value, date):
        return value.isoformat(), None
    text = _plain(value)
    if fmt and text:
        return _parse_time(text, fmt, as_day)
    return text, None


def column_letter(index: int) -> str:
    """The spreadsheet's name of a column (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (a lone surrogate from a JSON ``\\ud800`` is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _problem(column: str, reason: str, args: dict | None = None) -> str:
    return SEP.join((column, reason, json.dumps(args) if args else ""))


class Mapper:
    """Turns source rows into stage rows: the canonical values (in ``profile.canonical_columns``
    order), the source column of a wide export's count, the row's first problem, the part number.

    A source row becomes one stage row, or one per given count of a wide export (``measures``); a
    wide row without any count becomes one stage row that says so, so that every source row is
    accounted for (docs/data-format.md, "Row accounting"). Empty cells are "not given"; a count of
    0 is a count. Nothing here raises for a bad cell: its problem travels with the row.
    """

    def __init__(self, profile: Profile, header: list[str]):
        self.profile = profile
        self.columns = profile.canonical_columns
        #: positions of the columns the header names (the others must stay empty)
        self.named = {i for i, name in enumerate(header) if header_key(name)}
        position: dict[str, int] = {}
        for i, name in enumerate(header):
            if header_key(name):
                position.setdefault(header_key(name), i)
        source = profile.columns or {c: c for c in self.columns}
        self.picks = {canon: position[header_key(src)] for canon, src in source.items()
                      if header_key(src) in position}
        self.measure_picks = [(position[header_key(src)], measure, src) for src, measure in profile.measures.items()
                              if header_key(src) in position]
        self.value_maps = {col: {k.casefold(): v for k, v in mapping.items()}
                           for col, mapping in profile.values.items()}

    def _convert(self, column: str, value: Any) -> tuple[str, tuple | None]:
        p = self.profile
        if column == "occurred_at":
            return _time_value(value, p.datetime_format, as_day=False)
        if column == "day":
            return _time_value(value, p.date_format, as_day=True)
        if column in ("value", "step_no"):
            return _number(value, p.decimal_comma), None
        text = _plain(value)
        if column == "service_key" and _SHORTENED.fullmatch(text):
            return "", ("a number shortened by the spreadsheet (format the column as text)", None)
        mapping = self.value_maps.get(column)
        if mapping is not None:
            return mapping.get(text.casefold(), text), None
        return text, None

    def _checked(self, column: str, value: Any) -> tuple[str, str | None]:
        """The cell's canonical text, and its problem: nothing PostgreSQL cannot store gets through."""
        if isinstance(value, list | dict):  # a pushed JSON value that is no single value
            return "", _problem(column, "not a single value")
        try:
            text, problem = self._convert(column, value)
        except Exception:  # noqa: BLE001 - a cell must never break the batch; it rejects its row
            text, problem = "", ("cannot be read", None)
        if problem is None and "\x00" in text:
            text, problem = "", ("contains a NUL character", None)
        if problem is None and not _encodable(text):
            text, problem = "", ("contains an invalid character", None)
        return text, _problem(column, *problem) if problem else None

    def rows(self, row: list[Any]) -> Iterator[tuple[Any, ...]]:
        base = dict(self.profile.constants)
        problem = None
        for column, index in self.picks.items():
            base[column], found = self._checked(column, row[index] if index < len(row) else None)
            problem = problem or found
        # A value where the header names no column (beyond it, or under an empty header cell) is
        # most often a row shifted by a delimiter inside a cell: the row is rejected, not guessed.
        stray = next((i for i in range(len(row)) if i not in self.named and _plain(row[i])), None)
        if stray is not None and problem is None:
            problem = _problem(column_letter(stray), "a value in a column without a header")
        if not self.measure_picks:
            yield (*[base.get(c, "") for c in self.columns], None, problem, 0)
            return
        given = 0
        for n, (index, measure, header) in enumerate(self.measure_picks):
            cell = row[index] if index < len(row) else None
            if _plain(cell) == "":
                continue  # not given: what is stored for this count stays
            value, found = self._checked("value", cell)
            given += 1
            yield (*[{**base, "measure": measure, "value": value}.get(c, "") for c in self.columns], header,
                   problem or found, n)
        if not given:
            headers = ", ".join(h for _, _, h in self.measure_picks)
            yield (*[base.get(c, "") for c in self.columns], headers, problem or _problem("value", "no count given"),
                   0)
