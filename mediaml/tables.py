"""Reading the data files every loader reads, with corrupt input turned into a DataError naming the file,
the line and what was expected.

`read_table` checks a CSV / TSV's structure with Python's csv module (the separator, quoting and
encoding pandas will use) before pandas parses it, because pandas lets these through silently: a row
with too few fields is padded with NaN, a first data row with one field too many turns the first column
into the index, a `;`-separated file read with `,` is one wide column. The outcomes:

- 0 bytes, or only blank lines: "<file>: is empty (0 bytes)" / "(only blank lines)";
- a header and nothing under it: "<file>: has a header but no rows";
- a first line that is one field on the expected separator but several on another:
  "<file>: looks ';'-separated, not ','-separated ...; set dataset.sep=';'" (the loader's key, if it has one);
- required columns not in the header: "<file>: missing column(s) [...]; expected [...], found [...]";
- a row with more or fewer fields than the header (or than the format's field count): an error naming
  the first such line and how many there are. Not skipped: which field is missing or extra is unknown,
  so every value after the break would land in the wrong column; it nearly always means the export
  itself is broken (an unquoted separator in a text field, a truncated last line); and every loader
  reads its tables before any work starts, so stopping costs no run;
- bytes that are not text in the expected encoding: "<file>: not a readable CSV file: not utf-8 text ...".

A UTF-8 byte-order mark and CRLF line ends are read as if absent. Lines are 1-based line numbers in the
file (a row whose quoted field spans lines starts at the first of them); blank lines are skipped, as
pandas does. `read_text` is the same for whole-file text (JSON, line formats): empty is an error.
"""
from __future__ import annotations

import bz2
import csv
import gzip
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from mediaml.errors import DataError

SEPARATORS = (",", ";", "\t", "|")
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _kind(sep: str) -> str:
    return {",": "CSV", "\t": "TSV"}.get(sep, f"{sep!r}-separated")


def _decoder(encoding: str) -> str:
    """utf-8 -> utf-8-sig, so a byte-order mark is not part of the first column's name."""
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def require_columns(found: Sequence[str], required: Sequence[str], source: str) -> None:
    missing = [c for c in required if c not in found]
    if missing:
        shown = list(found)[:30]
        raise DataError(f"{source}: missing column(s) {missing}; expected {list(required)}, "
                        f"found {shown}{' ...' if len(found) > len(shown) else ''}")


def _empty(path: Path, how: str, expected: str) -> DataError:
    return DataError(f"{path}: is empty ({how}); expected {expected}")


def read_text(path: Path, encoding: str = "utf-8", expected: str = "some text") -> str:
    """The whole file as text (BOM dropped); an empty or undecodable file is a DataError naming it."""
    path = Path(path)
    data = path.read_bytes()
    if not data:
        raise _empty(path, "0 bytes", expected)
    try:
        text = data.decode(_decoder(encoding))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not {encoding} text (byte {e.start}: {e.reason}); expected {expected}") from None
    if not text.strip():
        raise _empty(path, "only blank lines", expected)
    return text


@dataclass
class _Layout:
    first: list[str] | None = None              # the first non-blank record (the header, if there is one)
    first_line: int = 0
    starts: list[int] = field(default_factory=list)   # line where each later record starts
    counts: list[int] = field(default_factory=list)   # its number of fields


def _scan(path: Path, sep: str, quoting: int, encoding: str, kind: str) -> _Layout:
    opener = _OPENERS.get(path.suffix.lower(), open)
    out, line = _Layout(), 0
    try:
        with opener(path, "rt", encoding=_decoder(encoding), newline="") as f:
            reader = csv.reader(f, delimiter=sep, quoting=quoting)
            for rec in reader:
                start, line = line + 1, reader.line_num
                if not rec or (len(rec) == 1 and not rec[0].strip()):
                    continue  # blank, skipped by pandas too
                if out.first is None:
                    out.first, out.first_line = rec, start
                else:
                    out.starts.append(start)
                    out.counts.append(len(rec))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a readable {kind} file: not {encoding} text near line {line + 1} "
                        f"({e.reason})") from None
    except (csv.Error, OSError, EOFError, lzma.LZMAError) as e:
        raise DataError(f"{path}: not a readable {kind} file: line {line + 1}: {e}") from None
    return out


def _sniff(path: Path, rec: list[str], line: int, sep: str, sep_key: str | None, kind: str) -> None:
    """A first line that is one field on `sep` but several on another separator: say which key to set."""
    if len(rec) != 1:
        return
    splits = {c: len(next(csv.reader([rec[0]], delimiter=c))) for c in SEPARATORS if c != sep}
    best = max(splits, key=splits.get)
    if splits[best] > 1:
        fix = f"set {sep_key}={best!r}" if sep_key else f"expected a {kind} file"
        raise DataError(f"{path}: looks {best!r}-separated, not {sep!r}-separated (line {line} is "
                        f"{splits[best]} fields on {best!r}, 1 on {sep!r}); {fix}")


def read_table(path: Path, sep: str = ",", *, header: bool = True, columns: Sequence[str] = (),
               n_fields: int | None = None, expected: str = "", sep_key: str | None = None,
               line_index: bool = False, encoding: str = "utf-8", quoting: int = csv.QUOTE_MINIMAL,
               **read_csv) -> pd.DataFrame:
    """`pd.read_csv(path, sep, ...)` after the structure checks above.

    header: the first line names the columns (then `columns` must be among them); n_fields: the
    format's field count per line (default: the header's, or the first line's); expected: what the file
    should hold, for the messages; sep_key: the config key that sets `sep` (named in the message when
    the file looks otherwise separated); line_index: index the rows by their line in the file (`line`)."""
    path = Path(path)
    kind = _kind(sep)
    expected = expected or (f"a {kind} file with a header line and one row per record" if header
                            else f"a {kind} file with one record per line")
    if path.stat().st_size == 0:
        raise _empty(path, "0 bytes", expected)
    lay = _scan(path, sep, quoting, encoding, kind)
    if lay.first is None:
        raise _empty(path, "only blank lines", expected)
    _sniff(path, lay.first, lay.first_line, sep, sep_key, kind)
    if header:
        require_columns(lay.first, columns, str(path))
        if not lay.counts:
            names = ", ".join(lay.first[:8]) + (", ..." if len(lay.first) > 8 else "")
            raise DataError(f"{path}: has a header but no rows (header: {names}); expected {expected}")
        starts, counts = lay.starts, lay.counts
    else:
        starts, counts = [lay.first_line, *lay.starts], [len(lay.first), *lay.counts]
    want = n_fields or (len(lay.first) if header else counts[0])
    bad = [i for i, n in enumerate(counts) if n != want]
    if bad:
        i = bad[0]
        like = "like the header" if header and not n_fields else f"({expected})"
        raise DataError(
            f"{path}: line {starts[i]} has {counts[i]} field(s), expected {want} {like}; {len(bad)} such line(s) "
            f"(lines {[starts[j] for j in bad[:10]]}{' ...' if len(bad) > 10 else ''}): a text field with an "
            f"unquoted {sep!r}, or a field lost? quote or fix the line(s)")
    try:
        df = pd.read_csv(path, sep=sep, header=0 if header else None, encoding=encoding, quoting=quoting,
                         **read_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable {kind} file: {e}") from e
    if line_index and len(df) == len(starts):
        df.index = pd.Index(starts, name="line")
    return df
