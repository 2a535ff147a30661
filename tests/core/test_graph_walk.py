"""graph_walk: reachability, consumer maps, folding into records, canonical and dataflow orders, scope keys."""
from __future__ import annotations

from porting.core.graph_walk import (Node, branch_signature, canonical_order, collapse_scope, consumer_map,
                                     dataflow_order, fold, name_key, reachable)
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


def _records(nodes):
    return fold(nodes, consumer_map(nodes), keep={nodes[-1].name})


def _unit(shortcut_first: bool, shortcut_on_left: bool):
    """A projection unit: x -> shortcut 1x1 / branch 1x1 -> 3x3 -> 1x1 -> add, in any creation and argument order."""
    shortcut = [node("s", Kind.CONV, ["x"], kernel=(1, 1), stride=(1, 1), shape=(1, 16, 8, 8))]
    branch = [node("c1", Kind.CONV, ["x"], kernel=(1, 1), stride=(1, 1)),
              node("r1", Kind.ACT, ["c1"]),
              node("c2", Kind.CONV, ["r1"], kernel=(3, 3), stride=(1, 1)),
              node("c3", Kind.CONV, ["c2"], kernel=(1, 1), stride=(1, 1), shape=(1, 16, 8, 8))]
    body = shortcut + branch if shortcut_first else branch + shortcut
    inputs = ["s", "c3"] if shortcut_on_left else ["c3", "s"]
    return [node("x", Kind.INPUT)] + body + [node("add", Kind.ADD, inputs, shape=(1, 16, 8, 8))]


def test_dataflow_order_ignores_creation_and_argument_order():
    orders = {tuple(record.name for record in dataflow_order(_records(_unit(first, left))))
              for first in (True, False) for left in (True, False)}
    # One order for all four; the shortcut (one conv) before the branch (three convs).
    assert orders == {("x", "s", "c1", "c2", "c3", "add")}
    # canonical_order (the report's row order) still follows the argument order.
    assert [r.name for r in canonical_order(_records(_unit(True, False)))] == ["x", "c1", "c2", "c3", "s", "add"]


def test_branch_signature_counts_windowed_layers_only_and_stops_at_the_branch_point():
    records = _records(_unit(True, True))
    by_name = {record.name: record for record in records}
    readers = {name: len(names) for name, names in consumer_map(records).items()}
    # One key per chain: the branch itself, then the chain that ends at its fork (here the input: nothing).
    assert branch_signature(by_name["s"], by_name, readers) == (
        (1, (("conv", (1, 1), (1, 1)),), (), (16,)), (0, (), (), ()))
    (count, geometry, stop, channels), _ = branch_signature(by_name["c3"], by_name, readers)
    assert (count, [kernel for _, kernel, _ in geometry], stop) == (3, [(1, 1), (3, 3), (1, 1)], ())
    assert channels == (4, 4, 16)  # the activation between c1 and c2 is walked through, not counted
    assert branch_signature(by_name["x"], by_name, readers) == ((0, (), (), ()),)  # identity shortcut: first


def test_dataflow_order_flattens_a_nested_concat_and_breaks_ties_by_the_fork():
    """slim's Inception-v3 ``concat(b0, concat(1x3, 3x1), concat(1x3', 3x1'))`` against a flat concat, any order."""
    def module(nested: bool, order):
        nodes = [node("x", Kind.INPUT), node("b0", Kind.CONV, ["x"], kernel=(1, 1)),
                 node("f1", Kind.CONV, ["x"], kernel=(1, 1)), node("f2", Kind.CONV, ["x"], kernel=(3, 3)),
                 node("b1a", Kind.CONV, ["f1"], kernel=(1, 3)), node("b1b", Kind.CONV, ["f1"], kernel=(3, 1)),
                 node("b2a", Kind.CONV, ["f2"], kernel=(1, 3)), node("b2b", Kind.CONV, ["f2"], kernel=(3, 1))]
        if nested:
            nodes += [node("c1", Kind.CONCAT, ["b1a", "b1b"]), node("c2", Kind.CONCAT, ["b2a", "b2b"]),
                      node("cat", Kind.CONCAT, ["b0", "c1", "c2"])]
        else:
            nodes += [node("cat", Kind.CONCAT, order)]
        return [record.name for record in dataflow_order(_records(nodes)) if record.kind != Kind.CONCAT]

    expected = module(True, None)
    assert expected == ["x", "b0", "f1", "b1a", "f2", "b2a", "b1b", "b2b"]
    assert module(False, ["b0", "b1a", "b1b", "b2a", "b2b"]) == expected
    assert module(False, ["b2b", "b1b", "b0", "b2a", "b1a"]) == expected


def test_dataflow_order_keeps_the_inputs_of_a_permuted_concat():
    nodes = [node("x", Kind.INPUT), node("a", Kind.CONV, ["x"], kernel=(1, 1)),
             node("b1", Kind.CONV, ["x"], kernel=(1, 1)), node("b2", Kind.CONV, ["b1"], kernel=(3, 3)),
             node("cat", Kind.CONCAT, ["b2", "a"])]
    records = dataflow_order(_records(nodes))
    assert [record.name for record in records] == ["x", "a", "b1", "b2", "cat"]
    assert records[-1].inputs == ("b2", "a")
