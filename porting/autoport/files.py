"""The files autoport writes for an output prefix (importable without loading a framework)."""
from __future__ import annotations

import os
from pathlib import Path


def output_paths(prefix: str | os.PathLike) -> dict[str, Path]:
    """PREFIX-symbol.json, PREFIX-0000.params, PREFIX-report.md and PREFIX-report.json."""
    prefix = str(prefix)
    return {"symbol": Path(f"{prefix}-symbol.json"), "params": Path(f"{prefix}-0000.params"),
            "report_md": Path(f"{prefix}-report.md"), "report_json": Path(f"{prefix}-report.json")}
