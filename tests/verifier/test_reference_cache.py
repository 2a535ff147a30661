"""The reference cache of ``compare`` (``porting.verifier.reference_cache``): hits, invalidation, corruption.

Every test writes the tiny builders of tests/support into its own folder (each side as a
named file that imports a copy of ``tiny_tf.py`` / ``tiny_mx.py``, so an edit to a file the
builder imports, not the one named, can be made) and points ``$PORTING_CACHE`` at a folder of
its own. ``result.reference_cache`` says what happened to the TF side, then to the MX side.
"""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from porting import compat  # noqa: F401  (shims first)
from porting.cli.compare import main
from porting.util import UsageError
from porting.verifier import reference_cache
from porting.verifier.api import verify

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"
#: The named builder: it takes its network from an imported module, and its one shape comment is wrong.
NAMED_TF = '''
import cached_tiny_tf as tiny

DEFAULT_IMAGE_SIZE = 8


def build(images, num_classes):
    logits, end_points = tiny.build(images, num_classes)  # 3 x 3 x 5
    return logits, end_points
'''
NAMED_MX = '''
import cached_tiny_mx as tiny


def build(num_classes):
    return tiny.build(num_classes)
'''


@pytest.fixture
def side(tmp_path, monkeypatch):
    """The builders 'net_tf.py:build' and 'net_mx.py:build' (importing ``cached_tiny_tf`` / ``cached_tiny_mx``)
    and the cache folder, all under tmp_path."""
    (tmp_path / "cached_tiny_tf.py").write_text((SUPPORT / "tiny_tf.py").read_text())
    (tmp_path / "net_tf.py").write_text(NAMED_TF)
    (tmp_path / "cached_tiny_mx.py").write_text((SUPPORT / "tiny_mx.py").read_text())
    (tmp_path / "net_mx.py").write_text(NAMED_MX)
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in ("cached_tiny_tf", "cached_tiny_mx"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setenv("PORTING_CACHE", str(tmp_path / "cache"))
    return tmp_path


def run(side, **kwargs):
    arguments = dict(tf=f"{side / 'net_tf.py'}:build", mx=f"{side / 'net_mx.py'}:build", size=8, classes=5,
                     cache=True)
    arguments.update(kwargs)
    return verify(**arguments)


def entries(side) -> list[Path]:
    """The TF side's entries."""
    return sorted((side / "cache" / "reference").rglob("*.entry"))


def mx_entries(side) -> list[Path]:
    return sorted((side / "cache" / "reference-mx").rglob("*.entry"))


def statuses(result) -> tuple[str, str]:
    """What the cache did for (the TF side, the MX side)."""
    tf, _, mx = result.reference_cache.partition("; MX side ")
    return tf, mx


def cli(side, capsys, *extra) -> tuple[int, str, str]:
    code = main(["--tf", f"{side / 'net_tf.py'}:build", "--mx", f"{side / 'net_mx.py'}:build", "--size", "8",
                 "--classes", "5", "--format", "json", "--no-progress", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_warm_run_gives_the_cold_runs_result(side):
    cold = run(side)
    warm = run(side)
    live = run(side, cache=False)
    assert (statuses(cold), statuses(warm)) == (("miss, stored", "miss, stored"), ("hit", "hit"))
    assert live.reference_cache == "off"
    assert isinstance(warm.tf_graph, reference_cache.CachedTfGraph)
    assert isinstance(warm.mx_graph, reference_cache.CachedMxGraph)
    assert not isinstance(cold.tf_graph, reference_cache.CachedTfGraph)
    assert not isinstance(cold.mx_graph, reference_cache.CachedMxGraph)
    assert warm.mx_graph.records == cold.mx_graph.records and warm.mx_graph.nodes == cold.mx_graph.nodes
    assert warm.title == cold.title == live.title
    assert warm.tf_graph.records == cold.tf_graph.records
    assert [r.attrs for r in warm.tf_graph.records] == [r.attrs for r in cold.tf_graph.records]
    assert warm.framework_params == cold.framework_params
    # The shape-comment lint read the frozen graph (tracebacks, shapes) and the recorded nominal size.
    assert [f.check for f in warm.findings] == [f.check for f in cold.findings]
    assert any(f.check == "shape_comment" and "net_tf.py" in f.message for f in warm.findings)
    for fmt in ("text", "markdown", "json"):
        assert warm.report(fmt) == cold.report(fmt) == live.report(fmt)


def test_the_entry_lists_the_imported_module_among_its_sources(side):
    run(side)
    header, _ = reference_cache.decode(entries(side)[0].read_bytes())
    assert set(header["sources"]) == {str((side / name).resolve()) for name in ("net_tf.py", "cached_tiny_tf.py")}


def test_a_module_imported_before_the_run_is_a_source_too(side):
    """In a long-lived process the builder's modules may be imported already: found through its globals."""
    __import__("cached_tiny_tf")
    run(side)
    header, _ = reference_cache.decode(entries(side)[0].read_bytes())
    assert str((side / "cached_tiny_tf.py").resolve()) in header["sources"]


def test_editing_a_file_the_builder_imports_rebuilds(side, monkeypatch):
    assert run(side).tf_record("Tiny/Conv2d_1a_3x3").shape[1] == 8
    helper = side / "cached_tiny_tf.py"
    helper.write_text(helper.read_text().replace("slim.conv2d(images, 8, 3", "slim.conv2d(images, 6, 3"))
    monkeypatch.delitem(sys.modules, "cached_tiny_tf")  # a new process would import the edited file
    rebuilt = run(side)
    assert statuses(rebuilt) == ("stale (cached_tiny_tf.py changed), rebuilt", "hit")
    assert rebuilt.tf_record("Tiny/Conv2d_1a_3x3").shape[1] == 6 and not rebuilt
    again = run(side)
    assert statuses(again) == ("hit", "hit") and again.tf_record("Tiny/Conv2d_1a_3x3").shape[1] == 6


@pytest.mark.parametrize("change", [{"classes": 7}, {"batch": 2}, {"is_training": False}, {"size": 10}])
def test_changing_an_argument_builds_another_entry(side, change):
    run(side)
    changed = run(side, **change)
    assert statuses(changed)[0] == "miss, stored"
    assert len(entries(side)) == 2
    # The MX builder sees classes, batch and size, not the training mode.
    assert statuses(changed)[1] == ("hit" if "is_training" in change else "miss, stored")
    assert statuses(run(side, **change)) == ("hit", "hit")


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign"])
def test_a_corrupt_entry_is_rebuilt_with_a_note(side, capsys, damage):
    assert cli(side, capsys)[0] == 0
    path = entries(side)[0]
    data = path.read_bytes()
    if damage == "flip":
        data = data[:-20] + bytes([data[-20] ^ 0xFF]) + data[-19:]
        expected = "corrupt (checksum mismatch)"
    elif damage == "truncate":
        data = data[:100]
        expected = "corrupt (unreadable header)"
    else:  # a well-formed entry whose payload would run code: refused, never unpickled into a call
        class Payload:
            def __reduce__(self):
                return (print, ("ran code from the cache",))
        data = reference_cache.encode(Payload(), {}, {})
        expected = "corrupt (unreadable payload (UnpicklingError))"
    path.write_bytes(data)
    code, out, err = cli(side, capsys)
    assert code == 0 and "ran code" not in out + err
    assert f"note: reference cache: {expected}, rebuilt" in err
    assert reference_cache.decode(path.read_bytes())[1].records  # rewritten whole
    assert cli(side, capsys)[2] == ""  # and used quietly


def test_no_cache_neither_reads_nor_writes(side, capsys):
    code, cold, _ = cli(side, capsys, "--no-cache")
    assert code == 0 and entries(side) == []
    cli(side, capsys)
    path = entries(side)[0]
    damaged = b"not an entry"
    path.write_bytes(damaged)
    code, out, err = cli(side, capsys, "--no-cache")
    assert code == 0 and err == "" and path.read_bytes() == damaged
    assert json.loads(out) == json.loads(cold)
    assert main(["--no-cache", "--refresh-cache"]) == 2


def test_refresh_cache_rebuilds_without_reading(side, capsys):
    cli(side, capsys)
    path = entries(side)[0]
    path.write_bytes(b"not an entry")
    code, _, err = cli(side, capsys, "--refresh-cache")
    assert code == 0 and err == ""  # the damaged entry was never read
    assert reference_cache.decode(path.read_bytes())[1].builder_name == "build"
    assert cli(side, capsys)[2] == ""


def test_the_library_default_is_off_and_callables_are_not_cached(side):
    from tests.support import tiny_mx, tiny_tf

    assert run(side, cache=False).reference_cache == "off"
    assert verify(tf=tiny_tf.build, mx=tiny_mx.build, size=8, classes=5, cache=True).reference_cache.startswith(
        "bypassed")
    assert entries(side) == []
    with pytest.raises(UsageError, match="cache must be"):
        run(side, cache="sometimes")


def warm_digest(side) -> str:
    return reference_cache.decode(entries(side)[0].read_bytes())[0]["sha256"][:24]


def _layers(result) -> list:
    return [(layer.tf, layer.mx, layer.result.max_abs, bool(layer.result)) for layer in result.numeric_report.layers]


def mx_forwards(side) -> list[Path]:
    return sorted((side / "cache" / "reference-mx").rglob("*" + reference_cache.FORWARD_SUFFIX))


def test_numeric_parity_reads_both_forwards_of_the_same_weights_and_input(side):
    live = run(side, numeric=True, cache=False)
    cold = run(side, numeric=True)
    warm = run(side, numeric=True)
    assert statuses(cold) == ("miss, stored; TF forward stored", "miss, stored; MX forward stored")
    assert statuses(warm) == ("hit; TF forward read", "hit; MX forward read")
    assert isinstance(warm.mx_graph, reference_cache.CachedMxGraph)
    assert isinstance(warm.tf_graph, reference_cache.CachedTfGraph) and warm.numeric_report.passed
    assert _layers(warm) == _layers(cold) == _layers(live)
    assert warm.report("markdown") == cold.report("markdown") == live.report("markdown")
    # Other weights (another seed) are other forwards: run on the graphs built again, then stored.
    other = run(side, numeric=True, seed=1)
    assert statuses(other) == ("hit; TF forward stored", "hit; MX forward stored") and _layers(other) != _layers(warm)
    assert _layers(other) == _layers(run(side, numeric=True, seed=1, cache=False))
    assert len(mx_forwards(side)) == 2
    # Forwards of another version of the entry are dropped when it is rebuilt (here: its payload differs).
    stray = next((side / "cache" / "reference").rglob("*" + reference_cache.FORWARD_SUFFIX))
    orphan = stray.with_name(stray.name.replace(warm_digest(side), "0" * 24))
    orphan.write_bytes(stray.read_bytes())
    assert statuses(run(side, numeric=True, cache="refresh")) == ("refreshed; TF forward read",
                                                                   "refreshed; MX forward read")
    assert not orphan.exists()
    # A damaged forward file is computed again, never read.
    for path in (side / "cache").rglob("*" + reference_cache.FORWARD_SUFFIX):
        path.write_bytes(path.read_bytes()[:-64])
    assert statuses(run(side, numeric=True)) == ("hit; TF forward stored", "hit; MX forward stored")
    assert statuses(run(side, numeric=True)) == ("hit; TF forward read", "hit; MX forward read")


def test_a_damaged_mx_forward_is_computed_again_never_read(side):
    cold = run(side, numeric=True)
    path = mx_forwards(side)[0]
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside an array's bytes: only the zip member's CRC can tell
    data[middle] ^= 0x40
    path.write_bytes(bytes(data))
    again = run(side, numeric=True)
    assert statuses(again) == ("hit; TF forward read", "hit; MX forward stored")
    assert _layers(again) == _layers(cold) and again.report("markdown") == cold.report("markdown")
    assert statuses(run(side, numeric=True))[1] == "hit; MX forward read"


def test_editing_a_module_the_mx_builder_imports_runs_the_mx_forward_live_again(side, monkeypatch):
    cold = run(side, numeric=True)
    assert cold.numeric_report.passed
    helper = side / "cached_tiny_mx.py"
    pads_before, pads_after = "pad_width=(0, 0, 0, 0, 0, 1, 0, 1)", "pad_width=(0, 0, 0, 0, 1, 0, 1, 0)"
    helper.write_text(helper.read_text().replace(pads_before, pads_after))  # the same shapes, other numbers
    monkeypatch.delitem(sys.modules, "cached_tiny_mx")  # a new process would import the edited file
    edited = run(side, numeric=True)
    assert statuses(edited) == ("hit; TF forward read", "stale (cached_tiny_mx.py changed), rebuilt; MX forward stored")
    assert not isinstance(edited.mx_graph, reference_cache.CachedMxGraph)
    assert not edited.numeric_report.passed and _layers(edited) != _layers(cold)
    assert _layers(edited) == _layers(run(side, numeric=True, cache=False))
    assert len(mx_forwards(side)) == 1  # the forward of the entry before the edit is gone
    warm = run(side, numeric=True)
    assert statuses(warm) == ("hit; TF forward read", "hit; MX forward read")
    assert warm.report("markdown") == edited.report("markdown")


@pytest.mark.parametrize("change", [{"size": 10}, {"classes": 7}])
def test_numeric_with_another_size_or_classes_builds_and_runs_both_sides_again(side, change):
    run(side, numeric=True)
    other = run(side, numeric=True, **change)
    assert statuses(other) == ("miss, stored; TF forward stored", "miss, stored; MX forward stored")
    assert _layers(other) == _layers(run(side, numeric=True, cache=False, **change))


def test_a_cached_mx_side_runs_live_against_a_tf_side_given_as_a_graph(side):
    """No TF entry to key the MX forward by: the cached MX side reads its symbol live, nothing is stored."""
    live = run(side, numeric=True, cache=False)
    run(side, numeric=True)
    before = mx_forwards(side)
    result = run(side, numeric=True, tf=None, tf_graph=live.tf_graph)
    assert result.reference_cache == "off; MX side hit"
    assert _layers(result) == _layers(live) and mx_forwards(side) == before


def _warm_run_in_a_child(side, report_format: str, numeric: bool = False) -> tuple[str, list[str], str]:
    """A cached ``verify`` in a fresh interpreter: (its cache status, [tensorflow loaded, mxnet loaded, passed],
    its report in ``report_format``)."""
    code = ("import sys; from porting.verifier.api import verify; "
            f"r = verify(tf={str(side / 'net_tf.py') + ':build'!r}, mx={str(side / 'net_mx.py') + ':build'!r}, "
            f"size=8, classes=5, cache=True, numeric={numeric}); "
            "print(repr(r.reference_cache), 'tensorflow' in sys.modules, 'mxnet' in sys.modules, bool(r)); "
            f"sys.stdout.write(r.report({report_format!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**__import__("os").environ, "PYTHONPATH": f"{ROOT}:{side}"})
    first, _, report = done.stdout.partition("\n")
    status, *flags = first.rsplit(" ", 3)
    return status, flags, report


def test_a_warm_numeric_run_imports_no_framework(side):
    """Neither side changed: both forwards are read, the layers compared, no TensorFlow and no MXNet loaded."""
    cold = run(side, numeric=True)
    status, flags, report = _warm_run_in_a_child(side, "markdown", numeric=True)
    assert flags == ["False", "False", "True"]
    assert status == "'hit; TF forward read; MX side hit; MX forward read'"
    assert report == cold.report("markdown")


def test_a_warm_run_imports_no_framework(side):
    """Neither side changed: no TensorFlow and no MXNet in the process, and the same report."""
    cold = run(side)
    status, flags, report = _warm_run_in_a_child(side, "json")
    assert status == "'hit; MX side hit'" and flags == ["False", "False", "True"]
    assert report == cold.report("json")


def test_the_frozen_graph_survives_pickling_links_and_all(side):
    run(side)
    _, cached = reference_cache.decode(entries(side)[0].read_bytes())
    assert pickle.loads(pickle.dumps(cached)).records == cached.records
    logits = cached.logits
    assert cached.graph.get_tensor_by_name(logits.name) is logits
    assert logits.op.outputs[0] is logits and cached.images.shape.as_list() == [1, 8, 8, 3]
    conv = cached.graph.get_operation_by_name(cached.records[0].parts[0].name)
    assert all(reader in set(cached.graph.ops.values()) for reader in conv.outputs[0].consumers())
    assert conv.traceback[0].name == "build_graph"


def test_a_cached_side_can_be_passed_on_as_tf_graph_but_not_run(side):
    warm = run(side) and run(side)
    mx = f"{SUPPORT / 'tiny_mx.py'}:build"
    again = verify(mx=mx, tf_graph=warm.tf_graph, classes=5)
    assert [row.status for row in again.rows] == [row.status for row in warm.rows] and again
    with pytest.raises(UsageError, match="cached TF side"):
        verify(mx=mx, tf_graph=warm.tf_graph, classes=5, numeric=True)


def test_concurrent_writers_leave_a_whole_entry(side):
    """Writes are atomic renames: a reader sees one writer's entry or the other's, never a mixture."""
    import threading

    run(side)
    path = entries(side)[0]
    _, cached = reference_cache.decode(path.read_bytes())
    other = reference_cache.CachedTfGraph(**{**cached.__dict__, "builder_name": "other"})
    seen, stop = set(), threading.Event()

    def write(graph):
        while not stop.is_set():
            reference_cache.store(path, graph, [])

    writers = [threading.Thread(target=write, args=(graph,)) for graph in (cached, other)]
    for writer in writers:
        writer.start()
    try:
        for _ in range(200):
            seen.add(reference_cache.decode(path.read_bytes())[1].builder_name)
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert seen <= {"build", "other"} and seen
    assert not [item for item in path.parent.iterdir() if item.suffix != ".entry"]  # no temporary left


def test_the_mx_entry_lists_the_modules_the_mx_builder_imported(side):
    run(side)
    header, cached = reference_cache.decode(mx_entries(side)[0].read_bytes(), reference_cache.CachedMxGraph)
    assert set(header["sources"]) == {str((side / name).resolve()) for name in ("net_mx.py", "cached_tiny_mx.py")}
    assert cached.builder_name == "build" and cached.parameter_count > 0


def test_editing_a_module_the_mx_builder_imports_reads_the_mx_side_again_while_tf_stays_cached(side, monkeypatch):
    assert run(side).mx_record("Tiny/Conv2d_1a_3x3").shape[1] == 8
    helper = side / "cached_tiny_mx.py"
    helper.write_text(helper.read_text().replace("num_filter=8", "num_filter=6"))
    monkeypatch.delitem(sys.modules, "cached_tiny_mx")  # a new process would import the edited file
    rebuilt = run(side)
    assert statuses(rebuilt) == ("hit", "stale (cached_tiny_mx.py changed), rebuilt")
    assert isinstance(rebuilt.tf_graph, reference_cache.CachedTfGraph)
    assert not isinstance(rebuilt.mx_graph, reference_cache.CachedMxGraph)
    assert rebuilt.mx_record("Tiny/Conv2d_1a_3x3").shape[1] == 6 and not rebuilt
    # The TF side from the cache, the MX side live: the report of a run with no cache at all.
    for fmt in ("text", "json"):
        assert rebuilt.report(fmt) == run(side, cache=False).report(fmt)
    again = run(side)
    assert statuses(again) == ("hit", "hit") and again.mx_record("Tiny/Conv2d_1a_3x3").shape[1] == 6
    assert again.report("json") == rebuilt.report("json")


def test_refresh_and_no_cache_cover_the_mx_side(side):
    run(side)
    path = mx_entries(side)[0]
    path.write_bytes(b"not an entry")
    assert run(side, cache=False).reference_cache == "off" and path.read_bytes() == b"not an entry"
    assert statuses(run(side)) == ("hit", "corrupt (not a reference cache entry (bad magic)), rebuilt")
    path.write_bytes(b"not an entry")
    assert statuses(run(side, cache="refresh")) == ("refreshed", "refreshed")
    assert statuses(run(side)) == ("hit", "hit")


def test_an_mx_side_passed_as_a_callable_is_read_live(side):
    from tests.support import tiny_mx

    assert statuses(run(side, mx=tiny_mx.build)) == ("miss, stored", "bypassed (a Python callable as the MX side)")
    assert mx_entries(side) == []


def test_bug_reports_and_lint_only_read_the_cached_mx_side_as_the_live_one(side, capsys):
    """A port with defects: the bug reports and --lint-only output of a warm run are the cold run's."""
    def both(name):
        argv = ["--tf", f"{side / 'net_tf.py'}:build", "--mx", f"{SUPPORT / 'tiny_mx.py'}:broken", "--size", "8",
                "--classes", "5", "--no-progress"]
        assert main(argv + ["--bug-reports", str(side / name)]) == 1
        report = capsys.readouterr().out
        assert main(argv + ["--lint-only", "--format", "json"]) == 1
        return report, capsys.readouterr().out, {p.name: p.read_text() for p in sorted((side / name).iterdir())}

    cold = both("cold")
    assert len(mx_entries(side)) == 1
    warm = both("warm")
    assert statuses(run(side, mx=f"{SUPPORT / 'tiny_mx.py'}:broken")) == ("hit", "hit")
    assert warm == cold and cold[2]
