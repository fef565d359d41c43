"""What every import of a retailer's file shares: reading CSV or TSV with line numbers,
problems reported by line and column in French, and the report of what changed.

An import validates every row before it writes anything; by default one bad row
refuses the whole file (nothing written), `skip_invalid` loads the good rows only;
`dry_run` reports what would change and writes nothing. Importing the same file twice
changes nothing the second time.
"""
from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, TextIO, Tuple

from sqlalchemy.orm import Session
from tqdm import tqdm

PROGRESS_FROM_ROWS = 2000  # a progress bar on files this long or longer
Row = Tuple[int, List[str]]


class FeedError(ValueError):
    """The file cannot be read at all (missing, not text, missing columns)."""


class RowError(ValueError):
    """One row refused: the column at fault and why, in French."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Problem:
    line: Optional[int]  # None: about the database, not a line of the file
    column: Optional[str]
    message: str

    def __str__(self) -> str:
        where = ", ".join(([f"ligne {self.line}"] if self.line is not None else [])
                          + ([f"colonne {self.column}"] if self.column else []))
        return f"{where} : {self.message}" if where else self.message


class Names:
    """What an import added, changed or withdrew: every one counted, the first `KEPT`
    named (a feed of millions of lines needs no list of millions of names). Compares
    and iterates as the list of the names kept."""

    KEPT = 1000

    def __init__(self) -> None:
        self.count = 0
        self.kept: List[str] = []

    def append(self, name: str) -> None:
        self.add(lambda: name)

    def add(self, name: Callable[[], str]) -> None:
        """Count one; name it (the name made only then) while fewer than KEPT are."""
        self.count += 1
        if len(self.kept) < self.KEPT:
            self.kept.append(name())

    def add_many(self, count: int, names: Callable[[], List[str]]) -> None:
        """Count `count` more; `names()` gives their names, asked only while fewer than
        KEPT are kept."""
        if count and len(self.kept) < self.KEPT:
            self.kept.extend(names()[:self.KEPT - len(self.kept)])
        self.count += count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[str]:
        return iter(self.kept)

    def __eq__(self, other: object) -> bool:
        return list(self.kept) == other if isinstance(other, list) else NotImplemented

    def __repr__(self) -> str:
        return f"Names({self.count}, {self.kept[:5]!r})"


@dataclass
class Report:
    """What an import did, or would do with `dry_run`."""

    kind: str
    added: Names = field(default_factory=Names)
    updated: Names = field(default_factory=Names)
    withdrawn: Names = field(default_factory=Names)  # products no longer offered
    unchanged: int = 0
    problems: List[Problem] = field(default_factory=list)  # rows refused
    notes: List[Problem] = field(default_factory=list)  # rows taken, with something to know
    written: bool = False

    def lines(self) -> List[str]:
        state = "écrit" if self.written else "rien n'est écrit"
        withdrawn = f"{len(self.withdrawn)} retiré(s), " if self.withdrawn else ""
        head = (f"{self.kind} : {len(self.added)} ajouté(s), {len(self.updated)} modifié(s), "
                f"{withdrawn}{self.unchanged} inchangé(s), {len(self.problems)} ligne(s) refusée(s) "
                f"({state})")
        return [head] + [f"  erreur, {p}" for p in self.problems] + [f"  note, {n}" for n in self.notes]


def _open(path: Path, required: Tuple[str, ...]) -> Tuple[Dict[str, int], "csv._reader", TextIO]:
    """The columns ({name in lower case: index}) and a reader of the rows after the
    header; the delimiter is the one the header uses (tab, semicolon or comma)."""
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
        header = handle.readline()
    except FileNotFoundError:
        raise FeedError(f"fichier introuvable : {path}") from None
    except UnicodeDecodeError:
        raise FeedError("le fichier n'est pas du texte UTF-8") from None
    if not header.strip():
        handle.close()
        raise FeedError("le fichier est vide")
    delimiter = max("\t;,", key=header.count)
    names = [name.strip().lower() for name in next(csv.reader([header], delimiter=delimiter))]
    missing = [column for column in required if column.lower() not in names]
    if missing:
        handle.close()
        raise FeedError("colonnes manquantes : " + ", ".join(missing))
    return {name: index for index, name in enumerate(names)}, csv.reader(handle, delimiter=delimiter), handle


def open_rows(path: Path, required: Tuple[str, ...]) -> Tuple[Dict[str, int], Iterator[Row]]:
    """The columns of a CSV or TSV file with a header line ({name in lower case: index})
    and its rows, read as they come: (line number, cells). Blank lines are skipped."""
    columns, chunks = open_chunks(path, required, 1000)
    return columns, (row for chunk in chunks for row in chunk)


def open_chunks(path: Path, required: Tuple[str, ...], size: int) -> Tuple[Dict[str, int], Iterator[List[Row]]]:
    """As `open_rows`, `size` rows at a time (a file of ten million lines is read in
    seconds so, where one generator step a line cost half a minute)."""
    columns, reader, handle = _open(path, required)

    def chunks() -> Iterator[List[Row]]:
        with handle:
            try:
                while True:
                    read = reader.line_num
                    # + 1: the header line. Blank lines skipped, cheaply: the first cell
                    # of a line that is not blank is seldom empty.
                    chunk = [(reader.line_num + 1, values) for values in itertools.islice(reader, size)
                             if values and (values[0].strip() or any(v.strip() for v in values))]
                    if reader.line_num == read:  # the end of the file
                        return
                    if chunk:
                        yield chunk
            except UnicodeDecodeError:
                raise FeedError(f"le fichier n'est pas du texte UTF-8 (après la ligne "
                                f"{reader.line_num + 1})") from None

    return columns, chunks()


def read_rows(path: Path, required: Tuple[str, ...]) -> List[Tuple[int, Dict[str, str]]]:
    """(line number, row) of a CSV or TSV file, each row keyed by the column names in
    lower case (see `open_rows`)."""
    columns, rows = open_rows(path, required)
    return [(line, {name: (values[i].strip() if i < len(values) else "")
                    for name, i in columns.items()}) for line, values in rows]


def with_progress(rows: List, label: str) -> Iterable:
    """The rows, with a progress bar on stderr for long files."""
    return tqdm(rows, desc=label, unit=" lignes") if len(rows) >= PROGRESS_FROM_ROWS else rows


def finish(session: Session, report: Report, dry_run: bool, skip_invalid: bool) -> None:
    """Commit what the import did, unless it is a dry run or a row was refused without
    `skip_invalid`: then roll it all back."""
    if not dry_run and (skip_invalid or not report.problems):
        session.commit()
        report.written = True
    else:
        session.rollback()
