"""Human ratings in SQLite, as in the self-evaluation of the pix2pix re-implementation report: a translation score
0-10 given on input + output, then a difference score 0-10 once the ground truth is shown; summaries are mean ± std
per model."""

from __future__ import annotations

import csv
import io
import math
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    model TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    family TEXT NOT NULL,
    step INTEGER,
    sample INTEGER NOT NULL,
    sample_name TEXT NOT NULL,
    translation INTEGER NOT NULL CHECK (translation BETWEEN 0 AND 10),
    difference INTEGER NOT NULL CHECK (difference BETWEEN 0 AND 10),
    psnr REAL,
    ssim REAL,
    style TEXT
)
"""
ROW_FIELDS = (
    "id",
    "created",
    "model",
    "checkpoint",
    "family",
    "step",
    "sample",
    "sample_name",
    "translation",
    "difference",
    "psnr",
    "ssim",
    "style",
)
SUMMARY_FIELDS = (
    "model",
    "checkpoint",
    "family",
    "n",
    "translation_mean",
    "translation_std",
    "difference_mean",
    "difference_std",
)


def checkpoint_name(path: str | Path) -> str:
    """How the ratings API and CSVs show a checkpoint: ``run/checkpoint`` for one in a run's ``checkpoints/`` folder,
    else the folder's name; never the absolute path the file stores (for ``pixtrans compare``)."""
    p = Path(str(path))
    if p.parent.name == "checkpoints" and p.parent.parent.name:
        return f"{p.parent.parent.name}/{p.name}"
    return p.name or str(path)


def _public(checkpoint: str) -> str:
    absolute = Path(checkpoint).is_absolute() or checkpoint[1:3] in (":\\", ":/")
    return checkpoint_name(checkpoint.replace("\\", "/")) if absolute else checkpoint


class RatingsDB:
    """A small SQLite store; one connection per call, serialised by a lock (ratings are rare and tiny)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def add(self, **row) -> int:
        """Insert one rating; returns its id."""
        row = {k: row.get(k) for k in ROW_FIELDS if k != "id"}
        row["created"] = row["created"] or datetime.now(UTC).isoformat(timespec="seconds")
        keys = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._lock, self._connect() as db:
            cur = db.execute(f"INSERT INTO ratings ({keys}) VALUES ({marks})", tuple(row.values()))
            return int(cur.lastrowid)

    def rows(self) -> list[dict]:
        with self._lock, self._connect() as db:
            cur = db.execute(f"SELECT {', '.join(ROW_FIELDS)} FROM ratings ORDER BY id")
            rows = [dict(zip(ROW_FIELDS, r)) for r in cur.fetchall()]
        for r in rows:
            r["checkpoint"] = _public(r["checkpoint"])
        return rows

    def summary(self) -> list[dict]:
        """Per (model, checkpoint): n and mean ± sample std of both scores (std 0 for a single rating)."""
        groups: dict[tuple, dict] = {}
        for r in self.rows():
            g = groups.setdefault((r["model"], r["checkpoint"]), {"family": r["family"], "t": [], "d": []})
            g["t"].append(r["translation"])
            g["d"].append(r["difference"])
        out = []
        for (model, ck), g in groups.items():
            tm, ts = _mean_std(g["t"])
            dm, ds = _mean_std(g["d"])
            out.append(
                {
                    "model": model,
                    "checkpoint": ck,
                    "family": g["family"],
                    "n": len(g["t"]),
                    "translation_mean": tm,
                    "translation_std": ts,
                    "difference_mean": dm,
                    "difference_std": ds,
                }
            )
        return out

    def counts(self) -> dict[str, int]:
        """Ratings per stored checkpoint key (the resolved path; kept in the file for ``pixtrans compare``)."""
        with self._lock, self._connect() as db:
            return dict(db.execute("SELECT checkpoint, COUNT(*) FROM ratings GROUP BY checkpoint").fetchall())


def _mean_std(values: list[int]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return round(mean, 4), round(math.sqrt(var), 4)


def to_csv(rows: list[dict], fields: tuple[str, ...]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
