"""Root-cause attribution: which problem rows only inherit a difference from an earlier one.

A port with one wrong layer shows many problem rows: every layer after it reads an input of
another size, so its own output differs too. Those rows are not defects of their own. A row is
*inherited* when every difference it has follows from its input (its output size or width is
what the layer's own settings give on the input the port feeds it) and an earlier problem row
feeds it; it is then attributed to that row's root cause (``LayerDiff.cause``), and a root row
lists the rows it explains (``LayerDiff.explains``). The layer's own geometry is judged on ITS
input: a stride-1 pool downstream of a wrong conv computes exactly what TF's rule gives on the
map it receives, so it is not a second defect.

A *moved stride* is one root cause too: a layer that downsamples where TF does not (its stride
is larger) and a later layer that does not where TF does, the rows between differing in size
only because of the move; the pair is described in words (``moved_strides``).

Cost: one pass over the rows, and over each inherited row's inputs on both sides (O(rows + edges)).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from porting.core.records import WINDOWED, Kind, LayerRecord, window_before_and_used_after
from porting.padding import PaddingError, output_size, tf_pads

#: Defects that a layer shows when only its input differs ("pads": windows that differ from TF's on TF's
#: input may be exactly TF's on the input the port feeds it, which ``own_geometry_holds`` checks).
INHERITABLE = frozenset({"shape", "channels", "input_shape", "pads"})
#: Kinds whose output width is their own setting (filters, hidden units), not their input's.
_OWN_WIDTH = frozenset({Kind.CONV, Kind.FC})


def tf_rule_on(tf: LayerRecord, in_shape) -> tuple[tuple[int, int], tuple[int, int, int, int]] | None:
    """What TF's windowed layer gives on an input of ``in_shape`` (NCHW): ((H, W) out, pads); None if unknown."""
    padding = tf.attrs.get("padding")
    if tf.kernel is None or tf.stride is None or in_shape is None or len(in_shape) != 4:
        return None
    dilation = tf.dilation or (1, 1)
    size = tuple(in_shape[2:4])
    try:
        if tf.part(Kind.PAD) is not None and tf.pads is not None:  # explicit pads, then VALID
            padded = (size[0] + tf.pads[0] + tf.pads[1], size[1] + tf.pads[2] + tf.pads[3])
            out = tuple(output_size(padded[a], tf.kernel[a], tf.stride[a], "VALID", dilation[a]) for a in range(2))
            return out, tuple(tf.pads)
        if padding not in ("SAME", "VALID"):
            return None
        out = tuple(output_size(size[a], tf.kernel[a], tf.stride[a], padding, dilation[a]) for a in range(2))
        pads = [tf_pads(size[a], tf.kernel[a], tf.stride[a], padding, dilation[a]) for a in range(2)]
    except PaddingError:
        return None
    return out, (pads[0][0], pads[0][1], pads[1][0], pads[1][1])


def own_geometry_holds(tf: LayerRecord, mx: LayerRecord) -> bool:
    """Whether the MXNet layer computes, on its own input, what TF's layer would on that input.

    Windowed layers: the same output size and the same windows (pad before, cells used after)
    as TF's padding rule gives on MXNet's input; other layers: their output keeps the input's
    spatial size on both sides, or differs from TF's only as the inputs do.
    """
    if tf.kind in WINDOWED and mx.kind in WINDOWED:
        if tuple(tf.kernel or ()) != tuple(mx.kernel or ()) or tuple(tf.stride or ()) != tuple(mx.stride or ()) \
                or tuple(tf.dilation or (1, 1)) != tuple(mx.dilation or (1, 1)):
            return False
        expected = tf_rule_on(tf, mx.in_shape)
        if expected is None or len(mx.shape) != 4 or tuple(mx.shape[2:4]) != expected[0]:
            return False
        hypothetical = replace(tf, in_shape=tuple(mx.in_shape), shape=tuple(mx.shape), pads=expected[1])
        return window_before_and_used_after(hypothetical) == window_before_and_used_after(mx)
    if tf.in_shape is not None and mx.in_shape is not None and len(tf.shape) == len(mx.shape) == 4 \
            and len(tf.in_shape) == len(mx.in_shape) == 4:
        tf_keeps = tuple(tf.shape[2:4]) == tuple(tf.in_shape[2:4])
        mx_keeps = tuple(mx.shape[2:4]) == tuple(mx.in_shape[2:4])
        return tf_keeps == mx_keeps
    return True


def _inherited(row, tf: LayerRecord, mx: LayerRecord) -> bool:
    """The row's differences are all of a kind an input can cause, and the layer's own settings hold."""
    fields = {defect.field for defect in row.defects}
    if not fields or not fields <= INHERITABLE or fields == {"pads"}:
        return False  # pads alone: the input is TF's, so the windows are the layer's own
    if "channels" in fields and tf.kind in _OWN_WIDTH and mx.kind in _OWN_WIDTH:
        return False  # the filter count is the layer's own setting
    if "channels" in fields and tf.kind == Kind.DWCONV and tf.in_shape and mx.in_shape \
            and tf.shape[1] * mx.in_shape[1] != mx.shape[1] * tf.in_shape[1]:
        return False  # another depth multiplier
    return own_geometry_holds(tf, mx) if fields & {"shape", "input_shape", "pads"} else True


@dataclass(frozen=True)
class MovedStride:
    """A downsampling done at another layer: ``early`` downsamples where TF does not, ``late`` does not where TF does."""

    early: int  # row index
    late: int
    tf_early: str
    tf_late: str
    between: int  # rows between them explained by the move

    def describe(self) -> str:
        between = (f"the {self.between} row{'s' if self.between != 1 else ''} between differ in size only because "
                   f"of it" if self.between else "the layer after it reads the downsampled map")
        return (f"moved stride: the downsampling TF does at {self.tf_late} (row #{self.late}) is done earlier, at "
                f"{self.tf_early} (row #{self.early}), in MXNet; {between}")


def _stride_change(row) -> int:
    """+1: MXNet's stride is larger than TF's (it downsamples here, TF does not); -1: smaller; 0: no stride defect."""
    for defect in row.defects:
        if defect.field == "stride":
            tf_stride = tuple(int(n) for n in defect.tf.strip("()[] ").replace(" ", "").split(",") if n)
            mx_stride = tuple(int(n) for n in defect.mx.strip("()[] ").replace(" ", "").split(",") if n)
            if all(a <= b for a, b in zip(tf_stride, mx_stride)):
                return 1
            if all(a >= b for a, b in zip(tf_stride, mx_stride)):
                return -1
    return 0


def attribute_causes(rows: list, records: dict[int, tuple], preset: dict[int, int] | None = None) -> list:
    """``rows`` with ``cause`` / ``explains`` set (a moved stride's late row attributed to its early one).

    ``records``: row index -> (TF record or None, MX record or None) of each row that has records
    (a batch norm or activation folded on one side only has none: it is always a root). ``preset``:
    rows whose cause is known already (the second half of a split layer: its first half's row).
    """
    tf_row = {tf.name: index for index, (tf, _) in records.items() if tf is not None}
    mx_row = {mx.name: index for index, (_, mx) in records.items() if mx is not None}
    problem = {row.index for row in rows if str(row.status) != "match"}
    cause: dict[int, int | None] = dict(preset or {})

    def upstream(index: int) -> list[int]:
        """The problem rows feeding row ``index`` directly, on either side."""
        found = set()
        for record, where in zip(records.get(index, (None, None)), (tf_row, mx_row)):
            for name in (record.inputs if record is not None else ()):
                source = where.get(name)
                if source is not None and source in problem and source != index:
                    found.add(source)
        return sorted(found)

    def root_of(index: int) -> int | None:
        if index in cause:
            return cause[index]
        cause[index] = None  # roots stay None (and a cycle cannot recurse)
        tf, mx = records.get(index, (None, None))
        if tf is None and mx is None:
            return None
        sources = upstream(index)
        roots = [root_of(source) for source in sources]
        if tf is None or mx is None:
            # A layer on one side only, fed by rows that only inherit a difference: the forms after a
            # wrong size cannot pair (e.g. a conv head over a map of another size vs Flatten + dense).
            if sources and all(root is not None for root in roots):
                cause[index] = min(roots)
            return cause[index]
        if not _inherited(rows[index], tf, mx):
            return None
        roots = sorted({source if root is None else root for source, root in zip(sources, roots)})
        for other in roots[1:]:  # the same change on parallel branches of one merge is one cause
            if _same_change(rows[roots[0]], rows[other]) and cause.get(other) is None:
                cause[other] = roots[0]
        cause[index] = roots[0] if roots else None
        return cause[index]

    for index in sorted(problem):  # rows follow a topological order: the recursion stays shallow
        root_of(index)
    _attribute_moved_strides(rows, cause, problem, upstream)
    explains: dict[int, list[int]] = {}
    for index in list(cause):
        root = cause[index]
        while root is not None and cause.get(root) is not None:  # a moved stride's late row had followers
            root = cause[root]
        cause[index] = root
        if root is not None:
            explains.setdefault(root, []).append(index)
    result = [replace(row, cause=cause.get(row.index), explains=tuple(sorted(explains.get(row.index, ()))))
              for row in rows]
    return result


def _same_change(a, b) -> bool:
    """Two root rows with the same stride defect (a unit that downsamples on its branch and its shortcut)."""
    strides = [tuple((d.tf, d.mx) for d in row.defects if d.field == "stride") for row in (a, b)]
    return bool(strides[0]) and strides[0] == strides[1]


def _attribute_moved_strides(rows, cause, problem, upstream) -> None:
    """Pairs (early, late) of stride defects of opposite sense, ``late`` following rows attributed to
    ``early``: the late row is attributed to the early one (one moved stride, one root cause)."""
    early_rows = [i for i in sorted(problem) if cause.get(i) is None and _stride_change(rows[i]) > 0]
    for early in early_rows:
        late = next((i for i in sorted(problem) if i > early and _stride_change(rows[i]) < 0
                     and _only_stride_and_input(rows[i]) and cause.get(i) is None
                     and early in {source if cause.get(source) is None else cause[source]
                                for source in upstream(i)}), None)
        if late is None:
            continue
        cause[late] = early


def moved_strides(rows) -> list[MovedStride]:
    """The moved strides among attributed rows: a late row (stride smaller than TF's) whose cause is an
    early one (stride larger than TF's)."""
    found = []
    for row in rows:
        if row.cause is not None and _stride_change(row) < 0 and _stride_change(rows[row.cause]) > 0:
            early = rows[row.cause]
            between = sum(1 for index in early.explains if index < row.index)
            found.append(MovedStride(early.index, row.index, early.layer, row.layer, between))
    return found


def _only_stride_and_input(row) -> bool:
    return {defect.field for defect in row.defects} <= {"stride", "input_shape", "pads", "shape"}
