"""Small primitives every layer shares; the standard library only.

One home for each: atomic files (write to a temporary name beside the target, then
rename, so a reader sees the old file or the new one and never a part), the exclusive
lock of an output directory, stale temporary files a killed run left, file-name slugs,
short lists in one-line messages, size and GPU arguments, and the exit-code convention
of every command.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

#: Exit codes of every command: the check passed, it found a problem, bad usage or input.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

#: Marks a temporary file of an atomic write: ``.<name>.tmp-<pid>-<token>``.
TEMP_MARK = ".tmp-"


class UsageError(Exception):
    """Bad usage or input: the command prints one ``error:`` line and exits with ``EXIT_USAGE``."""


class LockBusy(Exception):
    """Another process holds the lock."""


# -- atomic files ---------------------------------------------------------------------------


def fsync_dir(path: Path | str) -> None:
    """Flush a directory entry (a rename) to disk; a no-op where the platform refuses."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path(path: Path | str) -> Path:
    """A unique temporary name beside ``path`` that :func:`is_temp_name` recognises."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def is_temp_name(name: str) -> bool:
    """Whether a file name is a temporary file of an atomic write (ours, possibly stale)."""
    return name.startswith(".") and TEMP_MARK in name


def atomic_write_via(path: Path | str, write: Callable[[str], None], durable: bool = True,
                     mode: int = 0o644, parents: bool = False) -> None:
    """Call ``write(temporary_path)``, then rename the result to ``path``.

    For writers that take a path (``mx.nd.save``, a PNG renderer). The file gets
    ``mode`` (readable by everyone, as a plain ``open`` would make it). ``durable`` also
    fsyncs the file and the directory, so the new file survives a power cut; turn it off
    for many small files that can be regenerated; ``parents`` creates missing parent
    directories. Nothing is left behind on failure.
    """
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(str(tmp))
        os.chmod(tmp, mode)
        if durable:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    if durable:
        fsync_dir(path.parent)


def atomic_write_bytes(path: Path | str, data: bytes, durable: bool = True, parents: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write_via`)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    atomic_write_via(path, write, durable, parents=parents)


def atomic_write_text(path: Path | str, text: str, durable: bool = True, parents: bool = False) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), durable, parents)


def write_together(files) -> None:
    """Write several files so that they appear together: each to a temporary name, then all renamed.

    ``files``: ``(path, write)`` pairs, ``write(temporary_path)`` as for
    :func:`atomic_write_via`; parents are created, files get mode 0644 and are fsynced.
    A failure or an interrupt while writing leaves none of the new files (and no
    temporary one); the renames at the end are quick and in the given order.
    """
    staged = []
    try:
        for path, write in files:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path(path)
            staged.append((tmp, path))
            write(str(tmp))
            os.chmod(tmp, 0o644)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()
    for folder in {path.parent for _, path in staged}:
        fsync_dir(folder)


def remove_stale_temps(directory: Path | str) -> list[Path]:
    """Delete the temporary files killed runs left in ``directory`` (never a committed file)."""
    directory = Path(directory)
    removed = []
    if directory.is_dir():
        for entry in directory.iterdir():
            if is_temp_name(entry.name) and entry.is_file():
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


# -- output paths -------------------------------------------------------------------------


def human_bytes(count: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"  # pragma: no cover


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe_writable(folder: Path, flag: str, shown: Path) -> None:
    """Create and delete a file in ``folder``: the only reliable test (root, read-only mounts, ACLs)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".porting-probe-", dir=folder)
    except OSError as err:
        raise UsageError(f"{flag} {shown}: cannot write in {folder} ({err.strerror}); "
                         "choose a folder you can write to") from None
    os.close(fd)
    os.unlink(probe)


def _check_space(folder: Path, need_bytes: int | None, flag: str, shown: Path) -> None:
    if need_bytes:
        free = shutil.disk_usage(folder).free
        if free < need_bytes:
            raise UsageError(f"{flag} {shown}: needs about {human_bytes(need_bytes)} but {folder} has "
                             f"{human_bytes(free)} free; free some space or write elsewhere")


def check_output_file(path: Path | str, flag: str, need_bytes: int | None = None) -> Path:
    """Check, before any work, that ``path`` can be written as a file (created with its parents).

    Raises:
        UsageError: it is a folder, a parent is a file, the folder is not writable, or
            there is less free space than ``need_bytes`` (when known).
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; expected a file path")
    ancestor = _existing_ancestor(path.parent)
    if not ancestor.is_dir():
        raise UsageError(f"{flag} {path}: {ancestor} is a file, not a folder; expected a path in a folder")
    _probe_writable(ancestor, flag, path)
    _check_space(ancestor, need_bytes, flag, path)
    return path


def check_output_dir(path: Path | str, flag: str, need_bytes: int | None = None) -> Path:
    """Check, before any work, that ``path`` is (or can be created as) a writable folder.

    Raises:
        UsageError: it is a file, a parent is a file, it is not writable, or there is less
            free space than ``need_bytes`` (when known).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file; expected a folder")
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise UsageError(f"{flag} {path}: {ancestor} is a file, not a folder; expected a folder path")
    _probe_writable(ancestor, flag, path)
    _check_space(ancestor, need_bytes, flag, path)
    return path


# -- test hooks ---------------------------------------------------------------------------


def pause_hook(env_name: str, command: str, unit: str) -> Callable[[int], None]:
    """``hook(n)``: when ``env_name`` is set to N, stop once the count reaches N and sleep.

    Tests of Ctrl-C and of killed runs set it to catch a command mid-work at a known
    point; the line printed on stderr tells them the command got there. Unset: a no-op.
    """
    after = os.environ.get(env_name)
    if not after:
        return lambda n: None
    limit, fired = int(after), [False]

    def hook(n: int) -> None:
        if n == limit and not fired[0]:
            fired[0] = True
            print(f"{command}: paused after {n} {unit} ({env_name})", file=sys.stderr, flush=True)
            time.sleep(3600)

    return hook


# -- locks --------------------------------------------------------------------------------


def acquire_lock(lock_file: Path | str) -> int:
    """Take an exclusive, non-blocking lock on ``lock_file`` (created if missing).

    Returns the open descriptor: the lock lasts until it is closed, and the kernel
    drops it when the process ends in any way, so a killed run never leaves it held.

    Raises:
        LockBusy: another process holds it.
    """
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockBusy(str(lock_file)) from None
    return fd


@contextlib.contextmanager
def exclusive_lock(lock_file: Path | str) -> Iterator[None]:
    """:func:`acquire_lock` for the duration of a ``with`` block."""
    fd = acquire_lock(lock_file)
    try:
        yield
    finally:
        os.close(fd)


# -- names and sizes ----------------------------------------------------------------------


def slug(text: str, limit: int = 120, default: str = "layer") -> str:
    """``text`` as a file-name-safe word: runs of other characters become ``_``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:limit] or default


def short_list(items: list[str], limit: int = 8) -> str:
    """The first ``limit`` items, comma-separated, then how many more there are (for one-line messages)."""
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


_HXW = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_hxw(text: str) -> tuple[int, int]:
    """``"32x48"`` -> ``(32, 48)`` (height first).

    Raises:
        ValueError: not two positive integers joined by 'x'.
    """
    match = _HXW.match(str(text))
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(f"expected HEIGHTxWIDTH with positive integers, e.g. 224x224, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_size(text: str) -> tuple[int, int]:
    """``"299"`` -> ``(299, 299)``; ``"150x149"`` -> ``(150, 149)``.

    Raises:
        ValueError: not N or HxW with positive integers.
    """
    stripped = str(text).strip()
    if stripped.isdigit() and int(stripped) >= 1:
        return int(stripped), int(stripped)
    try:
        return parse_hxw(stripped)
    except ValueError:
        raise ValueError(f"expected N or HxW with positive integers, got {text!r}") from None


def parse_gpus(text: str | None) -> list[int]:
    """``"0,1"`` -> ``[0, 1]``; empty or ``None`` -> ``[]`` (CPU).

    Raises:
        ValueError: not a comma-separated list of distinct non-negative integers; the
            message reads after the option's name (``--gpus <message>``).
    """
    if text is None or not str(text).strip():
        return []
    ids = []
    for part in str(text).split(","):
        part = part.strip()
        if not part.isdigit():
            raise ValueError(f"expects comma-separated GPU numbers like 0 or 0,1, got {text!r}")
        ids.append(int(part))
    if len(set(ids)) != len(ids):
        raise ValueError(f"lists a GPU twice: {text!r}")
    return ids
