"""Pooling."""
from __future__ import annotations

from porting.core.records import Kind
from porting.frameworks.mx_attrs import as_flag
from porting.frameworks.mx_op_readers import reads
from porting.frameworks.mx_op_readers.common import read_window


@reads("Pooling")
def pooling(node, attrs) -> None:
    """Pooling -> pool_max / pool_avg (other types: other): window, convention, global, count_include_pad."""
    pool_type = attrs.get("pool_type", "max")
    global_pool = as_flag(attrs.get("global_pool"), False)
    node.kind = {"max": Kind.POOL_MAX, "avg": Kind.POOL_AVG}.get(pool_type, Kind.OTHER)
    read_window(node, attrs, pooling=True, global_pool=global_pool)
    node.attrs.update(pool_type=pool_type, pooling_convention=attrs.get("pooling_convention", "valid"),
                      global_pool=global_pool)
    if pool_type == "avg":
        node.attrs["count_include_pad"] = as_flag(attrs.get("count_include_pad"), True)
    else:
        node.attrs["pad_value"] = float("-inf")  # MXNet's max pooling ignores its own pad cells
