"""Source layouts: where the images are and which label each one has.

A layout turns a source directory into a ``Source``: the class names in label order and
one ``Item`` per candidate file. Nothing is decoded here; bad files are found later, by
the packer, and skipped there. What a layout can reject outright (a missing ``.mat``
file, a label count that does not match the images, a class folder with no files) is a
``DataError`` with one message that says what was expected.

Layouts:
  * ``folders``   SRC/<class>/**/<image>; classes are the sub-folder names, sorted.
  * ``oxford17``  SRC/jpg/image_0001.jpg ... in blocks of 80 consecutive images per class
                  (Nilsback and Zisserman's 17 Category Flower Dataset).
  * ``oxford102`` SRC/jpg/image_00001.jpg ..., SRC/imagelabels.mat (``labels``, 1-based),
                  SRC/setid.mat (``trnid``/``valid``/``tstid``) for the official split.
  * ``digits``    scikit-learn's bundled handwritten digits (1797 real 8x8 scans, UCI),
                  written out as PNG class folders by ``write_digits`` and then read
                  as ``folders``: the same pipeline, no download.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from porting import util

OXFORD17_PER_CLASS = 80
OXFORD17_CLASSES = 17


class DataError(Exception):
    """Bad input that stops the run; ``str(e)`` is the single line shown after ``error:``."""


@dataclass(frozen=True)
class Item:
    """One candidate image: its path relative to the source root and its label.

    ``split`` is set only when the layout carries an official split (Oxford 102).
    """

    relpath: str
    label: int
    split: str | None = None


@dataclass
class Source:
    """A scanned source directory."""

    layout: str
    root: Path
    classes: list[str]
    items: list[Item]
    # Files (relative to root) other than the images whose content defines the data set.
    meta_files: list[str] = field(default_factory=list)
    official_split: bool = False
    # Files found in the layout that cannot be an item at all: (relpath, reason).
    ignored: list[tuple[str, str]] = field(default_factory=list)
    identity: str = ""  # what "the same data set" means for the output-directory check


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _require_dir(root: Path, what: str) -> None:
    if not root.exists():
        raise DataError(f"{what} {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{what} {root} is not a directory")


def scan_folders(root: Path) -> Source:
    """One sub-folder per class; every visible file below it (recursively) is a candidate.

    Raises:
        DataError: no class folders, or a class folder without any file.
    """
    root = Path(root)
    _require_dir(root, "--src")
    entries = sorted(e for e in os.listdir(root) if _visible(e))
    classes = [e for e in entries if (root / e).is_dir()]
    ignored = [(e, "not inside a class folder") for e in entries if not (root / e).is_dir()]
    if not classes:
        raise DataError(f"--src {root} has no class sub-folders (expected SRC/<class>/<image>)")
    items: list[Item] = []
    for label, cls in enumerate(classes):
        found = []
        for dirpath, dirnames, filenames in os.walk(root / cls, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if _visible(d))
            for name in filenames:
                if _visible(name):
                    found.append(os.path.relpath(os.path.join(dirpath, name), root))
        if not found:
            raise DataError(f"class '{cls}' is empty: {root / cls} holds no files")
        items.extend(Item(rel, label) for rel in sorted(found))
    return Source("folders", root, classes, items, ignored=ignored, identity=f"folders:{root.resolve()}")


_OX17 = re.compile(r"^image_(\d{4})\.jpg$")
_OX102 = re.compile(r"^image_(\d{5})\.jpg$")


def _numbered_images(jpg: Path, pattern: re.Pattern) -> tuple[dict[int, str], list[tuple[str, str]]]:
    numbered: dict[int, str] = {}
    ignored = []
    for name in sorted(os.listdir(jpg)):
        if not _visible(name):
            continue
        m = pattern.match(name)
        if m:
            numbered[int(m.group(1))] = f"jpg/{name}"
        else:
            ignored.append((f"jpg/{name}", f"name does not match {pattern.pattern}"))
    return numbered, ignored


def _check_consecutive(numbered: dict[int, str], what: str) -> None:
    if not numbered:
        raise DataError(f"{what}: no image files found")
    ids = sorted(numbered)
    missing = sorted(set(range(1, ids[-1] + 1)) - set(ids))
    if missing:
        shown = ", ".join(str(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(
            f"{what}: images must be numbered 1..N without gaps (labels come from the position); "
            f"missing {len(missing)} number(s): {shown}"
        )


def scan_oxford17(root: Path) -> Source:
    """Oxford 17 Category Flowers: ``jpg/image_NNNN.jpg``, 80 consecutive images per class.

    Class ``k`` (0-based) holds images ``80k+1 .. 80k+80``. A full copy has 1360 images;
    a smaller multiple of 80 (the first classes) is accepted so that fixtures stay small.

    Raises:
        DataError: no ``jpg/`` folder, gaps in the numbering, or a count that is not a
        multiple of 80 (the labels would be ambiguous).
    """
    root = Path(root)
    _require_dir(root, "--src")
    jpg = root / "jpg"
    if not jpg.is_dir():
        raise DataError(f"Oxford 17 layout needs {jpg}/ with image_0001.jpg ... (not found)")
    numbered, ignored = _numbered_images(jpg, _OX17)
    _check_consecutive(numbered, f"Oxford 17 {jpg}")
    n = len(numbered)
    if n % OXFORD17_PER_CLASS or n // OXFORD17_PER_CLASS > OXFORD17_CLASSES:
        raise DataError(
            f"Oxford 17 {jpg}: {n} images cannot be labelled; the layout has {OXFORD17_PER_CLASS} "
            f"consecutive images per class, so the count must be a multiple of {OXFORD17_PER_CLASS} "
            f"up to {OXFORD17_PER_CLASS * OXFORD17_CLASSES}"
        )
    classes = [f"class_{k:02d}" for k in range(n // OXFORD17_PER_CLASS)]
    items = [Item(numbered[i], (i - 1) // OXFORD17_PER_CLASS) for i in sorted(numbered)]
    return Source("oxford17", root, classes, items, ignored=ignored, identity=f"oxford17:{root.resolve()}")


def _load_mat(path: Path, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    from scipy.io import loadmat

    if not path.is_file():
        raise DataError(f"{what} needs {path} (not found)")
    try:
        mat = loadmat(str(path))
    except Exception as e:  # scipy raises ValueError, TypeError, OSError... on a corrupt file
        raise DataError(f"{path} is not a readable .mat file ({type(e).__name__}: {e})") from e
    out = {}
    for key in keys:
        if key not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise DataError(f"{path} has no variable '{key}' (found: {', '.join(found) or 'none'})")
        arr = np.asarray(mat[key]).reshape(-1)
        if arr.size and not np.all(np.equal(np.mod(arr, 1), 0)):
            raise DataError(f"{path}: '{key}' must hold integers")
        out[key] = arr.astype(np.int64)
    return out


def scan_oxford102(root: Path, official_split: bool = False) -> Source:
    """Oxford 102 Flowers: ``jpg/image_NNNNN.jpg``, ``imagelabels.mat``, ``setid.mat``.

    ``imagelabels.mat`` holds ``labels`` (1 x N, values 1..102, image ``i`` has
    ``labels[i-1]``). With ``official_split`` the items carry the split of ``setid.mat``:
    ``trnid`` → train, ``valid`` → val, ``tstid`` → test (1-based image numbers).

    Raises:
        DataError: a missing or unreadable ``.mat`` file, a label count that differs from
        the number of images, labels out of range, or a ``setid.mat`` that names images
        that do not exist or puts one image into two splits.
    """
    root = Path(root)
    _require_dir(root, "--src")
    jpg = root / "jpg"
    if not jpg.is_dir():
        raise DataError(f"Oxford 102 layout needs {jpg}/ with image_00001.jpg ... (not found)")
    labels = _load_mat(root / "imagelabels.mat", ("labels",), "Oxford 102 layout")["labels"]
    numbered, ignored = _numbered_images(jpg, _OX102)
    if len(numbered) != labels.size:
        raise DataError(
            f"{root / 'imagelabels.mat'} has {labels.size} labels but {jpg} holds {len(numbered)} "
            f"image_NNNNN.jpg files; they must match one to one"
        )
    _check_consecutive(numbered, f"Oxford 102 {jpg}")
    if labels.size and (labels.min() < 1):
        raise DataError(f"{root / 'imagelabels.mat'}: labels must be 1-based class numbers, found {labels.min()}")
    n_classes = int(labels.max()) if labels.size else 0
    classes = [f"class_{k:03d}" for k in range(1, n_classes + 1)]
    split_of: dict[int, str] = {}
    meta = ["imagelabels.mat"]
    if official_split:
        ids = _load_mat(root / "setid.mat", ("trnid", "valid", "tstid"), "--official-split")
        meta.append("setid.mat")
        for key, split in (("trnid", "train"), ("valid", "val"), ("tstid", "test")):
            for i in ids[key].tolist():
                if i not in numbered:
                    raise DataError(f"{root / 'setid.mat'}: '{key}' names image {i}, which is not in {jpg}")
                if i in split_of:
                    raise DataError(f"{root / 'setid.mat'}: image {i} is in both {split_of[i]} and {split}")
                split_of[i] = split
    items = [
        Item(numbered[i], int(labels[i - 1]) - 1, split_of.get(i) if official_split else None)
        for i in sorted(numbered)
        if not official_split or i in split_of
    ]
    ignored += [(numbered[i], "not in setid.mat") for i in sorted(numbered) if official_split and i not in split_of]
    return Source(
        "oxford102", root, classes, items, meta_files=meta, official_split=official_split,
        ignored=ignored, identity=f"oxford102:{root.resolve()}",
    )


def write_digits(dest: Path) -> Path:
    """Write scikit-learn's bundled digits as PNG class folders ``dest/<digit>/digit_NNNN.png``.

    The 8x8 scans hold counts 0..16; they are scaled to 0..255 (``round(v * 255 / 16)``)
    and stored as 3-channel PNG. Files whose bytes are already right are left untouched,
    so writing twice changes nothing (the packer's no-op check sees the same mtimes).
    """
    import cv2
    from sklearn.datasets import load_digits

    dest = Path(dest)
    digits = load_digits()
    for i, (img, target) in enumerate(zip(digits.images, digits.target)):
        grey = np.clip(np.round(img * 255.0 / 16.0), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".png", np.repeat(grey[:, :, None], 3, axis=2))
        if not ok:  # pragma: no cover - OpenCV always encodes an 8x8 uint8 image
            raise RuntimeError("cv2.imencode failed on a digit")
        path = dest / str(int(target)) / f"digit_{i:04d}.png"
        data = buf.tobytes()
        try:
            if path.read_bytes() == data:
                continue
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        util.atomic_write_bytes(path, data, durable=False)  # regenerated from scikit-learn if lost
    return dest


def digits_identity() -> str:
    return "digits:sklearn.datasets.load_digits"


LAYOUTS = ("folders", "oxford17", "oxford102", "digits")


def scan(layout: str, root: Path, official_split: bool = False) -> Source:
    """Scan ``root`` with the named layout (``digits`` reads the folders ``write_digits`` wrote)."""
    if official_split and layout != "oxford102":
        raise DataError(f"--official-split exists only for --layout oxford102, not {layout}")
    if layout == "folders":
        return scan_folders(root)
    if layout == "oxford17":
        return scan_oxford17(root)
    if layout == "oxford102":
        return scan_oxford102(root, official_split)
    if layout == "digits":
        src = scan_folders(root)
        src.layout, src.identity = "digits", digits_identity()
        return src
    raise DataError(f"unknown layout {layout!r}. Available: {', '.join(LAYOUTS)}")
