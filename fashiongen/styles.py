"""Read styles.csv exactly: every row, whole product names, the literal text NA kept.

Nothing here imports TensorFlow, and importing it does not import pandas (slow): `fashiongen.download`
needs only the header constants.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from fashiongen.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

STYLES_COLUMNS = (
    "id", "gender", "masterCategory", "subCategory", "articleType",
    "baseColour", "season", "year", "usage", "productDisplayName",
)
STYLES_HEADER = ",".join(STYLES_COLUMNS)  # the header line of the real file


def read_styles(path: str | os.PathLike, required: Sequence[str] = STYLES_COLUMNS) -> pd.DataFrame:
    """Read styles.csv exactly: every row, whole product names, "NA" kept as the text "NA".

    22 lines of the real file have unquoted commas in productDisplayName, the last column;
    `pandas.read_csv` rejects them. Here a line with extra fields keeps its first
    columns and joins the rest back into the last column (the same as splitting on the first
    9 commas). Quoted fields are honoured too. Every value stays a string except `id` (int).
    Raises `DatasetError` naming the line for a short row, a duplicate or non-integer id,
    or a header without the `required` columns, or a quote left open (csv's field limit).
    """
    import pandas as pd  # here, not at the top: see the module docstring

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist.") from None
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path} is not a UTF-8 text file ({error}).") from None
    rows = csv.reader(io.StringIO(text))
    header = next(_parsed(rows, path), None)
    if not header:
        raise DatasetError(f"{path} is empty: expected a header line with {', '.join(required)}.")
    header = [name.strip() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
        raise DatasetError(f"{path} has no column {', '.join(missing)} (its header: {', '.join(header)}).")
    frame = pd.DataFrame(_records(rows, len(header), path), columns=header, dtype=str)
    if "id" in frame.columns:
        frame["id"] = _integer_ids(frame["id"], path)
    return frame


def _csv_error(path: Path, line: int, error: csv.Error) -> DatasetError:
    """csv's error as a DatasetError naming the line; an unbalanced quote is the usual cause (the
    quoted field then runs on to the end of the file, past csv's 128 KB field limit)."""
    return DatasetError(f"{path} line {line} cannot be parsed ({error}): "
                        "is a double quote (\") left unclosed on or before it?")


def _parsed(rows: Iterator[list[str]], path: Path) -> Iterator[list[str]]:
    """`rows` (a csv.reader), its csv.Error raised as a DatasetError naming the line the bad row starts on."""
    while True:
        start = rows.line_num + 1
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as error:
            raise _csv_error(path, start, error) from None
        yield row


def _records(rows: Iterator[list[str]], width: int, path: Path) -> list[list[str]]:
    """The data rows, each `width` fields: extra fields join the last column (unquoted commas)."""
    records = []
    for line_number, row in enumerate(_parsed(rows, path), start=2):
        if not row:
            continue  # a blank line, e.g. at the end of the file
        if len(row) > width:
            row = row[: width - 1] + [",".join(row[width - 1:])]
        elif len(row) < width:
            raise DatasetError(f"{path} line {line_number} has {len(row)} fields, expected {width}: {','.join(row)[:80]!r}")
        records.append(row)
    return records


def _integer_ids(column: pd.Series, path: Path) -> pd.Series:
    """The id column as int64; a non-integer or repeated id raises, naming its line."""
    import pandas as pd

    ids = pd.to_numeric(column, errors="coerce")
    bad = column.index[ids.isna() | (ids != ids.round())]
    if len(bad):
        raise DatasetError(f"{path} line {bad[0] + 2} has id {column[bad[0]]!r}, not an integer.")
    ids = ids.astype("int64")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise DatasetError(f"{path} lists id {dup.iloc[0]} more than once.")
    return ids
