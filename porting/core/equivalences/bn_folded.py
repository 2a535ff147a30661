"""A batch norm folded into the convolution before it ≡ the convolution followed by that batch norm.

Why they compute the same thing: at inference a batch norm is a per-channel affine map,
``bn(y) = gamma * (y - mean) / sqrt(var + eps) + beta = a * y + c``, and a convolution is linear
in its kernel, so ``bn(conv(x, k)) = conv(x, a * k) + c``: the same layer with each output
channel's kernel scaled by ``a`` and a bias ``c``. Converters (tf2onnx, TensorRT, OpenVINO) fold
it so; the structure alone cannot tell whether ``a`` and ``c`` were computed right, so the pair is
accepted as "equivalent if the numbers agree": ``--numeric`` decides, and without it the report
says so as a warning. Canonical form: the folded one (a convolution with a bias, no batch norm),
the rewritten record marked ``needs_numbers``.

Applies only to a convolution *with a bias* and no batch norm on one side (a folded batch norm
always leaves the bias ``c``) that comes with stored weights (``stored_weights``: a model file or a
Gluon block, whose values a converter computed), whose counterpart on the other side has a batch
norm and no bias, with the same kernel, stride, dilation, output shape and activation. A
convolution that simply lost its batch norm (no bias), or a builder's port that lost it and kept
MXNet's default bias (no weights of its own: nothing was folded), stays a difference.
"""
from __future__ import annotations

from dataclasses import replace

from porting.core.equivalences.base import SIDES, equivalence
from porting.core.records import Kind, LayerRecord, Part

_CONVS = (Kind.CONV, Kind.DWCONV)


def _has_bias(r: LayerRecord) -> bool:
    return bool(r.attrs.get("has_bias")) or r.part(Kind.BIAS) is not None


def is_folded(r: LayerRecord) -> bool:
    """A convolution with a bias, no batch norm and stored weights: what a folded batch norm leaves."""
    return r.kind in _CONVS and r.part(Kind.BN) is None and _has_bias(r) and bool(r.attrs.get("stored_weights"))


def is_normalised(r: LayerRecord) -> bool:
    """A convolution followed by a batch norm, without a bias of its own."""
    return r.kind in _CONVS and r.part(Kind.BN) is not None and not _has_bias(r)


def _act(r: LayerRecord):
    """The activation folded into the record (None: linear)."""
    if r.part(Kind.ACT) is None:
        return None
    return r.attrs.get("act.act") or r.attrs.get("act.type") or "act"


def _signature(r: LayerRecord) -> tuple:
    in_channels = r.in_shape[1] if r.in_shape is not None and len(r.in_shape) > 1 else None
    return (r.kind, tuple(r.kernel or ()), tuple(r.stride or ()), tuple(r.dilation or ()), tuple(r.shape),
            in_channels, r.part(Kind.ACT) is not None)


def fold_record(r: LayerRecord) -> LayerRecord:
    """``r`` (conv + batch norm) in its folded form: conv + bias, the batch norm's settings dropped."""
    parts = []
    for part in r.parts:
        if part.kind == Kind.BN:
            parts.append(Part(Kind.BIAS, part.name, "folded batch norm"))
        else:
            parts.append(part)
    attrs = {key: value for key, value in r.attrs.items() if not key.startswith("bn.")}
    attrs.update(has_bias=True, equivalence="bn_folded", needs_numbers=True)
    return replace(r, parts=tuple(parts), attrs=attrs)


@equivalence("bn_folded")
def bn_folded(tf, mx):
    sides, notes = [tf, mx], []
    for a in (0, 1):
        b = 1 - a
        folded = [r for r in sides[b] if is_folded(r)]
        if not folded:
            continue
        available: dict[tuple, list[LayerRecord]] = {}
        for r in folded:
            available.setdefault(_signature(r), []).append(r)
        rewritten, counterparts = [], set()
        for r in sides[a]:
            candidates = available.get(_signature(r)) if is_normalised(r) else None
            if not candidates:
                rewritten.append(r)
                continue
            counterpart = candidates.pop(0)
            counterparts.add(counterpart.name)
            rewritten.append(fold_record(r))
            notes.append(f"{SIDES[a]} {r.name}: conv + batch norm taken as the folded conv + bias of "
                         f"{SIDES[b]} {counterpart.name} (equivalent if the numbers agree)")
        sides[a] = rewritten
        # The folded side's records are marked too: the numbers decide for both.
        sides[b] = [replace(r, attrs=dict(r.attrs, equivalence="bn_folded", needs_numbers=True))
                    if r.name in counterparts else r for r in sides[b]]
    return sides[0], sides[1], notes
