"""The output directory of ``python -m porting.data``: what it may hold, and how a build lands in it.

* Ownership: the directory holds only files the packer writes (:data:`OWN_NAMES`, staging
  directories, temporary files); anything else makes :func:`prepare_out` refuse it.
* One build at a time: :func:`locked` holds ``OUT/.lock`` (``porting.util.acquire_lock``).
* Up to date: :func:`fingerprint` hashes the arguments that shape the output, the tool
  versions and the (size, mtime) of every source file; the manifest records it, and a
  run whose fingerprint matches an intact manifest writes nothing.
* Atomic landing: everything is written into ``OUT/.staging-<pid>/`` (:func:`staging`)
  under ``*.partial`` names; :func:`commit` renames the complete files into ``OUT`` and
  writes ``manifest.json`` last, atomically. A killed run leaves no ``.rec`` under its
  final name and no manifest; :func:`clean_stale` removes its leftovers next time.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from porting import util
from porting.data.manifest import FORMAT, MANIFEST_NAME
from porting.data.sources import DataError, Source
from porting.data.splits import SPLITS

if TYPE_CHECKING:
    from porting.data.build_config import BuildConfig

MEAN_IMG_NAME = "mean.bin"
CONTENTS_NAME = "contents.tsv"
DIGITS_SRC_NAME = "digits_src"
LOCK_NAME = ".lock"
STAGING_PREFIX = ".staging-"
#: Every file name a build writes into ``OUT`` (besides staging directories and temporary files).
OWN_NAMES = frozenset(
    {MANIFEST_NAME, MEAN_IMG_NAME, CONTENTS_NAME, DIGITS_SRC_NAME, LOCK_NAME}
    | {f"{s}.{ext}" for s in SPLITS for ext in ("lst", "rec", "idx")}
)


def _is_own(name: str) -> bool:
    return name in OWN_NAMES or name.startswith(STAGING_PREFIX) or util.is_temp_name(name)


def prepare_out(out: Path) -> None:
    """Create ``out`` if needed.

    Raises:
        DataError: ``out`` is a file, or holds files a build did not write.
    """
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    foreign = sorted(n for n in os.listdir(out) if not _is_own(n))
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise DataError(
            f"--out {out} holds files that porting.data did not write ({shown}); use an empty or new directory"
        )


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold the output directory's lock for the block.

    Raises:
        DataError: another run holds it.
    """
    try:
        fd = util.acquire_lock(out / LOCK_NAME)
    except util.LockBusy:
        raise DataError(f"another porting.data run is writing to {out}") from None
    try:
        yield
    finally:
        os.close(fd)


def remove_if_unused(out: Path) -> None:
    """Remove ``out`` when it holds nothing but a build's bookkeeping (its lock, staging, temporary files).

    For a folder this run created and then failed in: nothing is left behind. A folder with
    any other file (a committed data set, the digits' sources) is kept.
    """
    try:
        names = os.listdir(out)
    except OSError:
        return
    if any(n != LOCK_NAME and not n.startswith(STAGING_PREFIX) and not util.is_temp_name(n) for n in names):
        return
    shutil.rmtree(out, ignore_errors=True)


def clean_stale(out: Path) -> None:
    """Remove what a killed run left: staging directories and temporary files."""
    for name in os.listdir(out):
        if name.startswith(STAGING_PREFIX) and (out / name).is_dir():
            shutil.rmtree(out / name, ignore_errors=True)
    util.remove_stale_temps(out)


def existing_manifest(out: Path) -> dict | None:
    """The manifest ``out`` holds (``{}`` when unreadable), None when there is none."""
    p = out / MANIFEST_NAME
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text("utf-8"))
    except (OSError, ValueError):
        return {}  # unreadable: treated as a different data set unless --force


# -- fingerprint --------------------------------------------------------------------------


def _dist_version(name: str) -> str:
    """Installed version from package metadata, without importing the package (MXNet takes seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def tool_versions(layout: str) -> dict[str, str]:
    """Versions of everything that shapes the output (recorded in the manifest and the fingerprint)."""
    import platform

    import cv2

    versions = {
        "python": platform.python_version(),
        "mxnet": _dist_version("mxnet"),
        "numpy": np.__version__,
        "opencv-python": cv2.__version__,
        "scipy": _dist_version("scipy"),
        "porting": _dist_version("porting"),
    }
    if layout == "digits":
        versions["scikit-learn"] = _dist_version("scikit-learn")
    return versions


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        try:
            st = path.lstat()
        except OSError:
            return (-1, -1)
    return st.st_size, st.st_mtime_ns


def fingerprint(cfg: BuildConfig, source: Source, versions: dict[str, str]) -> str:
    """SHA-256 over the arguments that shape the output and the (size, mtime) of every source file."""
    h = hashlib.sha256()
    args = {
        "format": FORMAT, "identity": source.identity, "layout": cfg.layout, "val": cfg.val, "test": cfg.test,
        "seed": cfg.seed, "resize": cfg.resize.to_json(), "crop": list(cfg.crop), "encoding": cfg.encoding,
        "quality": cfg.quality, "normalize": cfg.normalize, "mirror": cfg.mirror,
        "official_split": cfg.official_split, "versions": versions,
    }
    h.update(json.dumps(args, sort_keys=True).encode())
    for rel in sorted([it.relpath for it in source.items] + source.meta_files + [r for r, _ in source.ignored]):
        size, mtime = _stat(source.root / rel)
        h.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


# -- staging and commit -------------------------------------------------------------------


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A fresh ``OUT/.staging-<pid>`` directory for the block; removed if the block fails."""
    stage = out / f"{STAGING_PREFIX}{os.getpid()}"
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # SIGKILL skips this; the next run cleans up
        raise


def commit(out: Path, stage: Path, files: dict[str, Path], manifest: dict) -> None:
    """Rename the staged files (``{final name: staged path}``) into place; the manifest goes last, atomically."""
    try:
        for p in files.values():
            with open(p, "rb+") as f:
                os.fsync(f.fileno())
        # From here until the manifest is written the directory has no manifest: readers refuse it.
        (out / MANIFEST_NAME).unlink(missing_ok=True)
        util.fsync_dir(out)
        for name, p in files.items():
            os.replace(p, out / name)
        for s in SPLITS:  # files of a split the new build does not have (e.g. an old test split)
            for ext in ("lst", "rec", "idx"):
                if f"{s}.{ext}" not in files:
                    (out / f"{s}.{ext}").unlink(missing_ok=True)
        util.fsync_dir(out)
        util.atomic_write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
