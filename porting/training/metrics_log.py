"""Per-epoch training metrics: one row per completed epoch, as CSV, JSON and a curve PNG.

The rows are data; the three files are renderings of the same list (STYLE 6). Every
write replaces the whole file atomically (``porting.util``: temporary name + rename), so a
reader, or a run killed in the middle of a write, sees the old table or the new one.

The training loop writes them after the epoch's checkpoint is committed, and the
checkpoint record (``checkpoint.json``) carries the same rows: on resume
:meth:`MetricsLog.restore` rewrites the files from it, so a table that a failed write
left behind, or one that holds an epoch whose checkpoint was never committed, is put
right (:meth:`MetricsLog.truncate` does the latter for checkpoints older than that).
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from porting.util import atomic_write_bytes, atomic_write_text

#: Column order of the CSV; a row may lack some (no validation split: no ``val_*``).
COLUMNS = (
    "epoch", "num_update", "lr", "train_top1", "train_top5", "train_ce", "val_top1", "val_top5", "val_ce",
    "samples", "seconds", "samples_per_s",
)

CSV_NAME = "metrics.csv"
JSON_NAME = "metrics.json"
PNG_NAME = "curve.png"


class MetricsLog:
    """The metrics table of one training run, kept in ``directory``.

    Args:
        directory: where ``metrics.csv``, ``metrics.json`` and ``curve.png`` live.
        title: drawn above the curve.
    """

    def __init__(self, directory: str | Path, title: str = "training curve"):
        self.directory = Path(directory)
        self.title = title
        self.rows: list[dict] = []
        path = self.directory / JSON_NAME
        if path.is_file():
            self.rows = list(json.loads(path.read_text("utf-8")).get("epochs", []))

    @property
    def csv_path(self) -> Path:
        return self.directory / CSV_NAME

    @property
    def json_path(self) -> Path:
        return self.directory / JSON_NAME

    @property
    def png_path(self) -> Path:
        return self.directory / PNG_NAME

    def truncate(self, last_epoch: int) -> None:
        """Forget rows after ``last_epoch`` (epochs whose checkpoint was never committed)."""
        kept = [r for r in self.rows if int(r["epoch"]) <= last_epoch]
        if len(kept) != len(self.rows):
            self.rows = kept
            self.write()

    def restore(self, rows: list[dict]) -> None:
        """Make the table exactly ``rows`` (the checkpoint's) and rewrite all three files.

        Always rewritten: after a failed write the three files may disagree with each other
        (``metrics.json`` new, ``metrics.csv`` old), which the rows alone do not show.
        """
        self.rows = sorted((dict(r) for r in rows), key=lambda r: int(r["epoch"]))
        self.write()

    def append(self, row: dict) -> None:
        """Add (or replace) the row of ``row['epoch']`` and rewrite all three files."""
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown metric column(s) {sorted(unknown)}. Available: {', '.join(COLUMNS)}")
        self.rows = [r for r in self.rows if int(r["epoch"]) != int(row["epoch"])] + [dict(row)]
        self.rows.sort(key=lambda r: int(r["epoch"]))
        self.write()

    def write(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.json_path, json.dumps({"columns": list(COLUMNS), "epochs": self.rows}, indent=2) + "\n")
        atomic_write_text(self.csv_path, render_csv(self.rows))
        if self.rows:
            atomic_write_bytes(self.png_path, render_png(self.rows, self.title))


def render_csv(rows: list[dict]) -> str:
    """The rows as CSV with the fixed :data:`COLUMNS` header; a missing value is empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
    return out.getvalue()


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in rows:
        v = r.get(key)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            xs.append(int(r["epoch"]))
            ys.append(float(v))
    return xs, ys


def render_png(rows: list[dict], title: str = "training curve") -> bytes:
    """Three panels: cross-entropy, accuracy (top-1 and top-5) and learning rate, per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.8), dpi=100)
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    for key, label, style in (("train_ce", "train", "-o"), ("val_ce", "val", "-s")):
        xs, ys = _series(rows, key)
        if xs:
            ax_loss.plot(xs, ys, style, label=label, markersize=3)
    ax_loss.set_title("cross-entropy")
    for key, label, style in (("train_top1", "train top-1", "-o"), ("val_top1", "val top-1", "-s"),
                              ("val_top5", "val top-5", "--^")):
        xs, ys = _series(rows, key)
        if xs:
            ax_acc.plot(xs, ys, style, label=label, markersize=3)
    ax_acc.set_ylim(0.0, 1.0)
    ax_acc.set_title("accuracy")
    xs, ys = _series(rows, "lr")
    if xs:
        ax_lr.plot(xs, ys, "-o", markersize=3)
    ax_lr.set_title("learning rate (last update of the epoch)")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc, ax_lr):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
