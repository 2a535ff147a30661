"""Deduplication and the stratified split: pure functions, no image or framework code.

Everything here works on indices, labels and content hashes, so the guarantees the data
pipeline makes (no content in two splits, every class in every split, a seeded order
that is never sorted by class) are tested without a single image.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

SPLITS = ("train", "val", "test")


class SplitError(ValueError):
    """A class has too few images for the requested split."""


@dataclass(frozen=True)
class Dedup:
    """Result of ``dedupe``: indices kept, and what was dropped and why."""

    kept: list[int]
    duplicates: list[tuple[int, int]]  # (dropped, kept): same content, same label
    conflicts: list[tuple[int, list[int]]]  # (dropped, others): same content, different labels


def dedupe(keys: Sequence[str], hashes: Sequence[str], labels: Sequence[int]) -> Dedup:
    """Keep one item per content hash, so one picture can never land in two splits.

    Within a group of equal hashes the item with the smallest key is kept. A group whose
    labels disagree is dropped entirely: nothing says which label is right.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        groups[h].append(i)
    kept, duplicates, conflicts = [], [], []
    for members in groups.values():
        members.sort(key=lambda i: keys[i])
        if len({labels[i] for i in members}) > 1:
            conflicts.extend((i, [j for j in members if j != i]) for i in members)
            continue
        kept.append(members[0])
        duplicates.extend((i, members[0]) for i in members[1:])
    kept.sort(key=lambda i: keys[i])
    return Dedup(kept, sorted(duplicates, key=lambda d: keys[d[0]]), sorted(conflicts, key=lambda c: keys[c[0]]))


def _share(n: int, fraction: float) -> int:
    """Images of a class of ``n`` for a split of ``fraction``: rounded half up, at least 1 when asked."""
    if fraction <= 0:
        return 0
    return max(1, int(math.floor(n * fraction + 0.5)))


def split_sizes(n: int, val: float, test: float) -> tuple[int, int, int]:
    """``(train, val, test)`` counts for a class of ``n`` images.

    Raises:
        SplitError: the class cannot give at least one image to each requested split
        and keep at least one for training.
    """
    n_val, n_test = _share(n, val), _share(n, test)
    n_train = n - n_val - n_test
    if n_train < 1:
        need = 1 + (val > 0) + (test > 0)
        raise SplitError(f"has {n} image(s); train/val/test = {1 - val - test:g}/{val:g}/{test:g} needs at least {need}")
    return n_train, n_val, n_test


def stratified_split(
    labels: Sequence[int], val: float, test: float, seed: int, class_names: Sequence[str] | None = None
) -> dict[str, list[int]]:
    """Split item indices per class, then shuffle each split as a whole.

    Items are expected in a deterministic order (the packer sorts them by path), so the
    same input and seed give the same split. The returned order is the ``.lst`` order:
    shuffled across classes, never grouped by class (PITFALLS 13).

    Raises:
        SplitError: a class has too few images; the message names the class.
    """
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_class[int(y)].append(i)
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for y in sorted(by_class):
        members = by_class[y]
        try:
            n_train, n_val, n_test = split_sizes(len(members), val, test)
        except SplitError as e:
            name = class_names[y] if class_names is not None else str(y)
            raise SplitError(f"class '{name}' {e}") from None
        order = [members[k] for k in rng.permutation(len(members))]
        out["val"] += order[:n_val]
        out["test"] += order[n_val : n_val + n_test]
        out["train"] += order[n_val + n_test :]
    return {s: shuffled(v, rng) for s, v in out.items()}


def shuffled(indices: Sequence[int], rng: np.random.Generator) -> list[int]:
    """A seeded permutation of ``indices``."""
    return [indices[k] for k in rng.permutation(len(indices))]


def overlaps(split_hashes: dict[str, Sequence[str]]) -> list[tuple[str, str, str]]:
    """Every ``(hash, split_a, split_b)`` whose content occurs in two splits (empty: disjoint)."""
    seen: dict[str, str] = {}
    found = []
    for split, hashes in split_hashes.items():
        for h in hashes:
            if h in seen and seen[h] != split:
                found.append((h, seen[h], split))
            seen.setdefault(h, split)
    return found


def is_class_sorted(labels: Sequence[int]) -> bool:
    """True when labels never decrease: the order that gives single-class batches."""
    return all(a <= b for a, b in zip(labels, labels[1:]))
