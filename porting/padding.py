"""TensorFlow SAME/VALID padding and its exact translation into MXNet arguments.

Pure integer arithmetic: this module imports neither TensorFlow nor MXNet, so
the rules can be read, tested and used on their own.

TensorFlow (tf.nn "Notes on padding"):
  SAME : out = ceil(in / s); total = max((out - 1) * s + (k - 1) * d + 1 - in, 0);
         before = total // 2, after = total - before (the extra pixel goes after).
  VALID: out = ceil((in - (k - 1) * d) / s); no padding.

MXNet's Convolution and Pooling pad symmetrically only, so an asymmetric TF pad
needs one of: an explicit ``pad`` op before the layer (zero for convolution,
-inf for max pooling), ``pooling_convention='full'`` for pooling with stride >= 2
(the trailing window is clipped at the input edge, which is what TF does), or,
for average pooling where neither is exact, a division by the pooled mask of
ones (``masked_avg``) so padded cells never enter the average.

Command line (for padding bug reports):
  python -m porting.padding --size 150 --kernel 3 --stride 2 --padding SAME --op conv
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

PADDINGS = ("SAME", "VALID")
OPS = ("conv", "max", "avg")

#: Methods a plan can choose, in order of preference.
METHOD_SYMMETRIC = "symmetric"  # op(pad=p): TF's pads are equal on both sides
METHOD_FULL = "full"  # Pooling(pad=before, pooling_convention='full')
METHOD_PAD_OP = "pad_op"  # mx.sym.pad(before, after) then op(pad=0)
METHOD_MASKED_AVG = "masked_avg"  # avg(pad0(x)) / avg(pad0(ones)): excludes pads exactly


class PaddingError(ValueError):
    """A padding question that has no valid answer (bad sizes or names)."""


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise PaddingError(f"{name} must be a positive integer, got {value!r}")


def _check_padding(padding: str) -> str:
    upper = str(padding).upper()
    if upper not in PADDINGS:
        raise PaddingError(f"unknown padding {padding!r}; expected one of {', '.join(PADDINGS)}")
    return upper


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: (k - 1) * d + 1."""
    return (kernel - 1) * dilation + 1


def output_size(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """TF's output size along one axis for 'SAME' or 'VALID'.

    Raises:
        PaddingError: non-positive numbers, an unknown padding name, or a VALID
            kernel larger than the input (output size 0).
    """
    _check_positive(size=size, kernel=kernel, stride=stride, dilation=dilation)
    padding = _check_padding(padding)
    if padding == "SAME":
        return -(-size // stride)
    span = effective_kernel(kernel, dilation)
    if span > size:
        raise PaddingError(
            f"kernel {kernel} (span {span} with dilation {dilation}) is larger than the input "
            f"size {size} under VALID padding: the output would be empty"
        )
    return -(-(size - span + 1) // stride)


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF's (before, after) pads for SAME along one axis; the extra pixel goes after."""
    out = output_size(size, kernel, stride, "SAME", dilation)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def tf_pads(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> tuple[int, int]:
    """(before, after) pads TF applies for either padding mode (VALID pads nothing)."""
    if _check_padding(padding) == "SAME":
        return same_pads(size, kernel, stride, dilation)
    output_size(size, kernel, stride, "VALID", dilation)  # validates
    return 0, 0


def is_symmetric(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> bool:
    """True when MXNet's symmetric ``pad=`` can express TF's padding on this axis."""
    before, after = tf_pads(size, kernel, stride, padding, dilation)
    return before == after


def mx_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1,
                   convention: str = "valid") -> int:
    """MXNet's output size along one axis for a symmetric pad and a pooling convention."""
    span = effective_kernel(kernel, dilation)
    numerator = size + 2 * pad - span
    if numerator < 0:
        return 0
    if convention == "full":
        return -(-numerator // stride) + 1
    return numerator // stride + 1


@dataclass(frozen=True)
class MxPlan:
    """How to build one TF layer in MXNet so that it is exact.

    Attributes are per spatial axis (height first). ``pre_pad`` is the
    (before, after) of an explicit pad op applied first, or None; ``pad`` is the
    symmetric pad given to the MXNet op itself.
    """

    op: str
    padding: str
    size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    tf_pads: tuple[tuple[int, int], ...]
    out: tuple[int, ...]
    method: str
    pad: tuple[int, ...]
    pre_pad: tuple[tuple[int, int], ...] | None = None
    pad_value: float = 0.0
    pooling_convention: str = "valid"
    count_include_pad: bool | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def symmetric(self) -> bool:
        return all(before == after for before, after in self.tf_pads)

    def pad_width(self) -> tuple[int, ...]:
        """``pad_width`` for ``mx.sym.pad`` on NCHW input (zeros for N and C)."""
        if self.pre_pad is None:
            raise PaddingError("this plan has no explicit pad op")
        width = [0, 0, 0, 0]
        for before, after in self.pre_pad:
            width.extend((before, after))
        return tuple(width)

    def mx_kwargs(self) -> dict:
        """Keyword arguments for mx.sym.Convolution / mx.sym.Pooling (without data/name)."""
        kwargs: dict = {"kernel": self.kernel, "stride": self.stride, "pad": self.pad}
        if self.op == "conv":
            kwargs["dilate"] = self.dilation
        else:
            kwargs["pool_type"] = "max" if self.op == "max" else "avg"
            kwargs["pooling_convention"] = self.pooling_convention
            if self.op == "avg":
                kwargs["count_include_pad"] = bool(self.count_include_pad)
        return kwargs

    def describe(self) -> str:
        """Human-readable MXNet recipe, e.g. for a bug report."""
        parts = []
        if self.pre_pad is not None:
            value = "-inf" if self.pad_value == float("-inf") else repr(self.pad_value)
            parts.append(f"mx.sym.pad(data, mode='constant', constant_value={value}, "
                         f"pad_width={self.pad_width()})")
        args = ", ".join(f"{key}={value!r}" for key, value in self.mx_kwargs().items())
        name = "Convolution" if self.op == "conv" else "Pooling"
        parts.append(f"mx.sym.{name}(data, {args})")
        if self.method == METHOD_MASKED_AVG:
            parts.append("divided by the same pooling of mx.sym.ones_like(data) padded the same way")
        return "\n".join(parts)


def _as_tuple(value: int | tuple[int, ...] | list[int], ndim: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * ndim
    try:
        value = tuple(value)
    except TypeError:  # a float or None: name the argument instead of "not iterable"
        raise PaddingError(f"{name} must be a positive integer or one per axis, "
                           f"got {value!r}") from None
    if len(value) != ndim:
        raise PaddingError(f"{name} has {len(value)} axes, expected {ndim}: {value!r}")
    return value


def plan(op: str, size, kernel, stride=1, padding: str = "SAME", dilation=1) -> MxPlan:
    """Translate one TF conv/pool layer into an exact MXNet plan.

    Args:
        op: 'conv', 'max' or 'avg'.
        size, kernel, stride, dilation: an int (same on every axis) or one per
            spatial axis; ``size`` decides the number of axes (an int means 2-D).
        padding: 'SAME' or 'VALID'.
    """
    if op not in OPS:
        raise PaddingError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    size = _as_tuple(size, 2, "size")
    ndim = len(size)
    kernel = _as_tuple(kernel, ndim, "kernel")
    stride = _as_tuple(stride, ndim, "stride")
    dilation = _as_tuple(dilation, ndim, "dilation")
    padding = _check_padding(padding)
    if op != "conv" and any(d != 1 for d in dilation):
        raise PaddingError(f"{op} pooling has no dilation in TensorFlow or MXNet, got {dilation}")
    for axis in range(ndim):
        _check_positive(size=size[axis], kernel=kernel[axis], stride=stride[axis],
                        dilation=dilation[axis])
    pads = tuple(tf_pads(s, k, st, padding, d) for s, k, st, d in zip(size, kernel, stride, dilation))
    out = tuple(output_size(s, k, st, padding, d) for s, k, st, d in zip(size, kernel, stride, dilation))
    befores = tuple(before for before, _ in pads)
    common = dict(op=op, padding=padding, size=size, kernel=kernel, stride=stride,
                  dilation=dilation, tf_pads=pads, out=out)
    # TF's average pooling never counts padded cells (SAME divides by the valid cells).
    count_include_pad = False if op == "avg" else None

    def mx_out(pad, convention):
        return tuple(mx_output_size(s, k, st, p, d, convention)
                     for s, k, st, p, d in zip(size, kernel, stride, pad, dilation))

    if all(before == after for before, after in pads):
        reasons = [f"TF pads {_fmt_pads(pads)} are symmetric, so MXNet pad={befores} is exact"]
        if op == "avg" and any(befores):
            reasons.append("count_include_pad=False because TF's average excludes padded cells")
        result = MxPlan(method=METHOD_SYMMETRIC, pad=befores, count_include_pad=count_include_pad,
                        reasons=tuple(reasons), **common)
        _assert_out(result, mx_out(befores, "valid"))
        return result

    asym = [axis for axis, (before, after) in enumerate(pads) if before != after]
    why = (f"TF pads {_fmt_pads(pads)} are asymmetric on axis {', '.join(map(str, asym))} "
           f"(the extra pixel goes after); a symmetric pad={befores} would give output "
           f"{mx_out(befores, 'valid')} instead of {out}, or with pad={tuple(a for _, a in pads)} "
           f"windows shifted by one pixel")
    if op != "conv" and mx_out(befores, "full") == out:
        reasons = [why, "pooling_convention='full' with pad=before keeps TF's window starts and "
                        "clips the last window at the input edge, which equals TF's padding"]
        if op == "avg":
            reasons.append("count_include_pad=False so clipped and padded cells are not counted")
        return MxPlan(method=METHOD_FULL, pad=befores, pooling_convention="full",
                      count_include_pad=count_include_pad, reasons=tuple(reasons), **common)
    zero = (0,) * ndim
    if op == "avg":
        reasons = [why, f"pooling_convention='full' with pad={befores} is not exact here (it gives "
                        f"output {mx_out(befores, 'full')} instead of {out}), and zeros from a pad "
                        "op would be counted by the average; so average the zero-padded input and "
                        "divide by the average of a padded mask of ones, which counts only real cells"]
        result = MxPlan(method=METHOD_MASKED_AVG, pad=zero, pre_pad=pads, pad_value=0.0,
                        count_include_pad=True, reasons=tuple(reasons), **common)
    else:
        value = float("-inf") if op == "max" else 0.0
        reasons = [why, f"explicit pad op with {'-inf (TF ignores padded cells in a max)' if op == 'max' else 'zeros'}"
                        f" followed by the {'pool' if op == 'max' else 'convolution'} with pad=0"]
        result = MxPlan(method=METHOD_PAD_OP, pad=zero, pre_pad=pads, pad_value=value,
                        count_include_pad=count_include_pad, reasons=tuple(reasons), **common)
    padded = tuple(s + b + a for s, (b, a) in zip(size, pads))
    got = tuple(mx_output_size(s, k, st, 0, d) for s, k, st, d in zip(padded, kernel, stride, dilation))
    _assert_out(result, got)
    return result


def _assert_out(result: MxPlan, got: tuple[int, ...]) -> None:
    if got != result.out:  # a broken invariant of this module, not bad input
        raise AssertionError(f"padding plan {result.method} gives {got}, TF gives {result.out}")


def _fmt_pads(pads) -> str:
    return ", ".join(f"({before},{after})" for before, after in pads)


# ---------------------------------------------------------------- command line

def _parse_dims(text: str, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise PaddingError(f"--{name} must be N or HxW with positive integers, got {text!r}") from None
    if len(values) not in (1, 2):
        raise PaddingError(f"--{name} must be N or HxW, got {text!r}")
    return values * 2 if len(values) == 1 else values


def render(result: MxPlan) -> str:
    """The command's report: TF's view, MXNet's recipe and the reasoning."""
    dims = lambda values: "x".join(map(str, values))  # noqa: E731
    lines = [
        f"TensorFlow {result.padding} {result.op}: input {dims(result.size)}, kernel "
        f"{dims(result.kernel)}, stride {dims(result.stride)}, dilation {dims(result.dilation)}",
        f"  output  {dims(result.out)}",
        f"  pads    (before, after) per axis (H, W): {_fmt_pads(result.tf_pads)}",
        f"MXNet ({result.method}):",
    ]
    lines += [f"  {line}" for line in result.describe().splitlines()]
    lines.append("Why:")
    lines += [f"  - {reason}" for reason in result.reasons]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m porting.padding",
        description="Print TF's output size and pads for one layer and the MXNet arguments "
                    "that reproduce it exactly.")
    parser.add_argument("--size", required=True, help="input size: N or HxW (e.g. 150x149)")
    parser.add_argument("--kernel", required=True, help="kernel: N or HxW (e.g. 1x7)")
    parser.add_argument("--stride", default="1", help="stride: N or HxW (default 1)")
    parser.add_argument("--dilation", default="1", help="dilation: N or HxW (default 1)")
    parser.add_argument("--padding", default="SAME", help="SAME or VALID (default SAME)")
    parser.add_argument("--op", default="conv", help="conv, max or avg (default conv)")
    args = parser.parse_args(argv)
    try:
        result = plan(args.op, _parse_dims(args.size, "size"), _parse_dims(args.kernel, "kernel"),
                      _parse_dims(args.stride, "stride"), args.padding,
                      _parse_dims(args.dilation, "dilation"))
    except PaddingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
