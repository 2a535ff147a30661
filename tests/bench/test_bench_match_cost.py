"""bench/match_cost.py: bad arguments, the anonymous renaming, and the report's structure on the reduced network.

Times depend on the machine; the run is checked for structure only (every preset measured, the
percentages are the times over the floor, the committed report untouched). No timed assertion.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench import load_bench

ROOT = Path(__file__).resolve().parents[2]

bench = load_bench("match_cost")


def test_bad_arguments_exit_2(tmp_path, capsys):
    out = tmp_path / "never.json"
    assert bench.main(["--runs", "0", "--out", str(out)]) == 2
    assert "--runs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # argparse's own choice check
        bench.main(["--presets", "huge", "--out", str(out)])
    assert exited.value.code == 2 and "invalid choice" in capsys.readouterr().err and not out.exists()


def test_anonymous_records_pair_by_structure_alone():
    from porting.core.records import Kind, LayerRecord

    records = [LayerRecord("data", Kind.INPUT, "null", (), (1, 3, 8, 8)),
               LayerRecord("conv", Kind.CONV, "Convolution", ("data",), (1, 4, 8, 8), (1, 3, 8, 8), (3, 3), (1, 1))]
    renamed = bench.anonymous(records)
    assert [r.name for r in renamed] == ["layer0", "layer1"] and renamed[1].inputs == ("layer0",)
    assert bench.matching_step(records, renamed) == 2


def test_reduced_run_reports_every_part(tmp_path, capsys):
    committed = ROOT / "reports" / "bench" / "match_cost.json"
    before = committed.read_bytes() if committed.exists() else None
    out = tmp_path / "match_cost.json"
    assert bench.main(["--presets", "reduced", "--runs", "1", "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {out}"
    report = json.loads(out.read_text())
    (preset,) = report["presets"]
    assert preset["preset"] == "reduced" and preset["repeats"] == [1, 1, 1]
    assert preset["rows"] >= preset["tf_records"] > 50 and preset["mx_records"] > 50
    assert preset["floor_s"] == pytest.approx(sum(preset["floor_parts_s"].values()))
    for kind in ("named", "anonymous"):
        assert preset[f"match_{kind}_percent"] == pytest.approx(100 * preset[f"match_{kind}_s"] / preset["floor_s"])
    assert report["within_target"] is None  # the target is judged on the full network only
    assert (committed.read_bytes() if committed.exists() else None) == before
