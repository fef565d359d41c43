"""What every import of a retailer's file shares: reading CSV or TSV with line numbers,
problems reported by line and column in French, and the report of what changed.

An import validates every row before it writes anything; by default one bad row
refuses the whole file (nothing written), `skip_invalid` loads the good rows only;
`dry_run` reports what would change and writes nothing. Importing the same file twice
changes nothing the second time.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from sqlalchemy.orm import Session
from tqdm import tqdm

PROGRESS_FROM_ROWS = 2000  # a progress bar on files this long or longer


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


@dataclass
class Report:
    """What an import did, or would do with `dry_run`."""

    kind: str
    added: List[str] = field(default_factory=list)
    updated: List[str] = field(default_factory=list)
    withdrawn: List[str] = field(default_factory=list)  # products no longer offered
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


def read_rows(path: Path, required: Tuple[str, ...]) -> List[Tuple[int, Dict[str, str]]]:
    """(line number, row) of a CSV or TSV file with a header line, the row keyed by the
    column names in lower case; the delimiter is the one the header uses (tab, semicolon
    or comma). Blank lines are skipped."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise FeedError(f"fichier introuvable : {path}") from None
    except UnicodeDecodeError:
        raise FeedError("le fichier n'est pas du texte UTF-8") from None
    header = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=max("\t;,", key=header.count))
    try:
        names = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise FeedError("le fichier est vide") from None
    missing = [column for column in required if column.lower() not in names]
    if missing:
        raise FeedError("colonnes manquantes : " + ", ".join(missing))
    rows = []
    for values in reader:
        if any(value.strip() for value in values):
            rows.append((reader.line_num, {name: (values[i].strip() if i < len(values) else "")
                                           for i, name in enumerate(names)}))
    return rows


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
