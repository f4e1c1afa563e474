"""Mapping profiles: a declarative description of a vendor's export (docs/data-format.md).

A profile is a JSON document (shipped ones live in ``ingest_workers/profiles/``; a data source
may carry its own under ``config["mapping"]``) with these keys, all optional except ``payload``:

``payload``         ``events`` or ``aggregates``: what the rows become
``delimiter``       CSV delimiter; default: guessed from the header line (``,`` ``;`` tab)
``encoding``        ``auto`` (default: UTF-8 with or without BOM, else Windows-1252) or a codec
``date_format``     ``strptime`` format of day columns (default ISO ``%Y-%m-%d``)
``datetime_format`` ``strptime`` format of timestamps (default ISO 8601)
``decimal_comma``   numbers are written ``1.234,5`` (German office files)
``columns``         canonical column -> source column header
``constants``       canonical column -> fixed value (e.g. the service of a single-purpose app)
``values``          canonical column -> {source value -> canonical value}
``measures``        source column -> measure, for wide count exports: each becomes one row

Files are read as streams (``csv`` over a decoding file object, openpyxl in read-only mode), so
memory stays flat however long the file is.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ingest_workers.canonical import PAYLOADS, REQUIRED

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
CHUNK = 1 << 20


class ProfileError(ValueError):
    """The file or the profile cannot be used at all (as opposed to single bad rows)."""


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

    def source_column(self, canonical: str) -> str:
        """The header a user sees in their file for a canonical column (error reports)."""
        if canonical in ("measure", "value") and self.measures:
            return ", ".join(self.measures)
        return self.columns.get(canonical, canonical)

    @property
    def is_plain_canonical(self) -> bool:
        """No mapping at all: a canonical CSV can stream straight into COPY."""
        return not (self.columns or self.constants or self.values or self.measures or self.date_format
                    or self.datetime_format or self.decimal_comma)


def profile_from_dict(name: str, data: dict[str, Any]) -> Profile:
    known = set(Profile.__dataclass_fields__) - {"name"}
    unknown = set(data) - known
    if unknown:
        raise ProfileError(f"Unknown keys in mapping profile {name}: {', '.join(sorted(unknown))}")
    if data.get("payload") not in PAYLOADS:
        raise ProfileError(f"Mapping profile {name}: payload must be one of {', '.join(PAYLOADS)}")
    return Profile(name=name, **data)


def shipped_profiles() -> dict[str, Profile]:
    return {p.stem: profile_from_dict(p.stem, json.loads(p.read_text())) for p in sorted(PROFILE_DIR.glob("*.json"))}


def profile_for(source_profile: str, config: dict[str, Any] | None = None) -> Profile:
    """The profile of a data source: its own mapping if it has one, else the shipped one it names."""
    if config and config.get("mapping"):
        return profile_from_dict(source_profile, config["mapping"])
    profiles = shipped_profiles()
    if source_profile not in profiles:
        raise ProfileError(f"No mapping profile named {source_profile!r}")
    return profiles[source_profile]


# -- reading files ------------------------------------------------------------------------------

def detect_encoding(path: Path, wanted: str = "auto") -> str:
    """``utf-8-sig`` for a BOM, ``utf-8`` when the whole file decodes, else ``cp1252``.

    Reads the file once in chunks (C speed, flat memory): a wrong guess found half-way through
    a load would waste the load.
    """
    if wanted != "auto":
        return wanted
    with path.open("rb") as fh:
        if fh.read(3) == codecs.BOM_UTF8:
            return "utf-8-sig"
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := fh.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def sniff_delimiter(header_line: str, wanted: str | None = None) -> str:
    if wanted:
        return wanted
    counts = {d: header_line.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_csv(path: Path, profile: Profile) -> tuple[list[str], Iterator[tuple[int, list[Any]]], str, str]:
    """(header, rows as (spreadsheet row number, values), encoding, delimiter)."""
    encoding = detect_encoding(path, profile.encoding)
    handle = path.open(encoding=encoding, newline="")
    first = handle.readline()
    delimiter = sniff_delimiter(first, profile.delimiter)
    handle.seek(0)
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        handle.close()
        raise ProfileError("The file is empty.") from None

    def rows() -> Iterator[tuple[int, list[Any]]]:
        with handle:
            for number, row in enumerate(reader, start=2):
                if any(cell.strip() for cell in row):
                    yield number, row

    return header, rows(), encoding, delimiter


def read_xlsx(path: Path) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    """The first worksheet: its first row is the header."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise ProfileError(f"The Excel file cannot be read: {exc}") from exc
    sheet = book.worksheets[0]
    values = sheet.iter_rows(values_only=True)
    try:
        header = ["" if h is None else str(h).strip() for h in next(values)]
    except StopIteration:
        book.close()
        raise ProfileError("The worksheet is empty.") from None

    def rows() -> Iterator[tuple[int, list[Any]]]:
        try:
            for number, row in enumerate(values, start=2):
                if any(cell not in (None, "") for cell in row):
                    yield number, list(row)
        finally:
            book.close()

    return header, rows()


def json_rows(records: Iterable[dict[str, Any]], first_row: int = 1
              ) -> tuple[list[str], Iterator[tuple[int, list[Any]]], list[str]]:
    """Push API objects as rows, numbered from ``first_row`` (events first, then aggregates)."""
    records = list(records)
    header: list[str] = []
    for record in records:
        for key in record:
            if key not in header:
                header.append(key)
    return header, ((i, [r.get(k) for k in header]) for i, r in enumerate(records, start=first_row)), header


# -- mapping onto the canonical columns ---------------------------------------------------------

def check_header(profile: Profile, header: list[str]) -> None:
    """Fail the whole file early when a column the profile needs is missing."""
    present = set(header)
    missing = [src for canon, src in profile.columns.items() if src not in present
               and canon in REQUIRED[profile.payload]]
    missing += [src for src in profile.measures if src not in present]
    if not profile.columns and not profile.measures:
        missing += [c for c in REQUIRED[profile.payload] if c not in present and c not in profile.constants]
        unknown = [h for h in header if h and h not in profile.canonical_columns]
        if unknown:
            raise ProfileError("Unknown columns: " + ", ".join(unknown))
    if missing:
        raise ProfileError("Missing columns: " + ", ".join(missing))


def _number(value: Any, decimal_comma: bool) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    text = str(value).strip()
    if decimal_comma:
        text = text.replace(".", "").replace(",", ".")
    if text.endswith(".0"):
        text = text[:-2]
    return text


def _timestamp(value: Any, fmt: str | None) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = "" if value is None else str(value).strip()
    if fmt and text:
        try:
            return datetime.strptime(text, fmt).isoformat()
        except ValueError:
            return text  # left as it is: validation reports it with the row number
    return text


def _day(value: Any, fmt: str | None) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = "" if value is None else str(value).strip()
    if fmt and text:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            return text
    return text


class Mapper:
    """Turns source rows into canonical rows (tuples in the order of ``profile.canonical_columns``)."""

    def __init__(self, profile: Profile, header: list[str]):
        self.profile = profile
        self.columns = profile.canonical_columns
        source = profile.columns or {c: c for c in header if c in self.columns}
        position = {h: i for i, h in enumerate(header)}
        self.picks = {canon: position[src] for canon, src in source.items() if src in position}
        self.measure_picks = [(position[src], measure) for src, measure in profile.measures.items()]
        self.value_maps = {col: {k.casefold(): v for k, v in mapping.items()}
                           for col, mapping in profile.values.items()}

    def _convert(self, column: str, value: Any) -> str:
        p = self.profile
        if column == "occurred_at":
            return _timestamp(value, p.datetime_format)
        if column == "day":
            return _day(value, p.date_format)
        if column in ("value", "step_no"):
            return _number(value, p.decimal_comma)
        text = "" if value is None else str(value).strip()
        mapping = self.value_maps.get(column)
        if mapping is not None:
            return mapping.get(text.casefold(), text)
        return text

    def rows(self, row: list[Any]) -> Iterator[tuple[str, ...]]:
        base = dict(self.profile.constants)
        for column, index in self.picks.items():
            base[column] = self._convert(column, row[index] if index < len(row) else None)
        if not self.measure_picks:
            yield tuple(base.get(c, "") for c in self.columns)
            return
        for index, measure in self.measure_picks:
            value = self._convert("value", row[index] if index < len(row) else None)
            if value in ("", "0"):
                continue
            yield tuple({**base, "measure": measure, "value": value}.get(c, "") for c in self.columns)

