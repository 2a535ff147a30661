"""graph_walk: reachability, consumer maps, folding into records, canonical order, scope keys."""
from __future__ import annotations

from porting.core.graph_walk import (Node, canonical_order, collapse_scope, consumer_map, fold, name_key,
                                     reachable)
from porting.core.records import Kind

EDGES = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": [], "e": ["d"]}


def test_reachable_follows_neighbours_and_includes_the_starts():
    assert reachable(["a"], EDGES.__getitem__) == {"a", "b", "c", "d"}
    assert reachable(["e"], EDGES.__getitem__) == {"e", "d"}


def test_reachable_within_neither_enters_nor_follows_other_nodes():
    assert reachable(["a"], EDGES.__getitem__, within={"a", "b", "d"}) == {"a", "b", "d"}
    assert reachable(["e"], EDGES.__getitem__, within={"a", "d"}) == set()


def node(name, kind, inputs=(), shape=(1, 4, 8, 8), **kwargs) -> Node:
    return Node(name=name, scope=kwargs.pop("scope", name), kind=kind, op=str(kind), inputs=list(inputs),
                shape=shape, **kwargs)


def test_consumer_map_lists_readers_in_node_order():
    nodes = [node("x", Kind.INPUT), node("c", Kind.CONV, ["x"]), node("m", Kind.MUL, ["c", "c"]),
             node("s", Kind.ADD, ["x", "m"])]
    assert consumer_map(nodes) == {"x": ["c", "s"], "c": ["m"], "m": ["s"]}
    assert consumer_map(nodes, unique=False)["c"] == ["m", "m"]


def test_consumer_map_with_other_keys():
    entries = [{"inputs": []}, {"inputs": [[0, 0, 0]]}, {"inputs": [[0, 0, 0], [1, 0, 0]]}]
    readers = consumer_map(range(3), inputs_of=lambda i: [src for src, *_ in entries[i]["inputs"]], key_of=lambda i: i)
    assert readers == {0: [1, 2], 1: [2]}


def test_fold_groups_pad_conv_bias_bn_act_into_one_record():
    nodes = [node("x", Kind.INPUT),
             node("p", Kind.PAD, ["x"], pads=(1, 1, 1, 1), in_shape=(1, 3, 6, 6)),
             node("c", Kind.CONV, ["p"], scope="Net/Conv", kernel=(3, 3), stride=(1, 1), pads=(0, 0, 0, 0)),
             node("b", Kind.BIAS, ["c"]), node("n", Kind.BN, ["b"], attrs={"eps": 1e-3}),
             node("r", Kind.ACT, ["n"], attrs={"act": "relu"})]
    records = fold(nodes, consumer_map(nodes), keep={"r"})
    assert [record.name for record in records] == ["x", "Net/Conv"]
    conv = records[1]
    assert conv.part_kinds() == (Kind.PAD, Kind.CONV, Kind.BIAS, Kind.BN, Kind.ACT)
    assert conv.pads == (1, 1, 1, 1) and conv.in_shape == (1, 3, 6, 6) and conv.inputs == ("x",)
    assert conv.attrs["bn.eps"] == 1e-3 and conv.attrs["act.act"] == "relu" and conv.attrs["output_node"] == "r"


def test_fold_stops_at_a_kept_output_and_at_a_second_reader():
    nodes = [node("x", Kind.INPUT), node("c", Kind.CONV, ["x"]), node("r", Kind.ACT, ["c"]),
             node("s", Kind.ADD, ["c", "r"])]
    records = fold(nodes, consumer_map(nodes), keep=set())
    assert [record.name for record in records] == ["x", "c", "r", "s"]
    records = fold(nodes[:3], consumer_map(nodes[:3]), keep={"c"})
    assert [record.name for record in records] == ["x", "c", "r"]


def test_canonical_order_puts_concat_branches_in_argument_order():
    nodes = [node("x", Kind.INPUT), node("b", Kind.CONV, ["x"]), node("a", Kind.CONV, ["x"]),
             node("cat", Kind.CONCAT, ["a", "b"])]
    records = fold(nodes, consumer_map(nodes), keep={"cat"})
    assert [record.name for record in canonical_order(records)] == ["x", "a", "b", "cat"]


def test_scope_keys():
    assert collapse_scope("Net/Net/Mixed_5b/concat") == "Net/Mixed_5b/concat"
    assert name_key("Net/Conv2d_1a_3x3/Conv2D") == name_key("Net/Conv2d_1a_3x3") == "net/conv2d/1a/3x3"
