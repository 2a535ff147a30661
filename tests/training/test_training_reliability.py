"""What training does before and around the work: the memory estimate, small validation splits, the
checkpoint's write order, the data check before MXNet reads a byte, progress bars.

Uses the session's digits data set and two-epoch model (conftest.py) and small symbols.
"""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from porting import compat, progress

mx = compat.import_mx()

from porting.cli import train as train_cli  # noqa: E402
from porting.data import integrity, iterators  # noqa: E402
from porting.training import checkpoint, loop, memory, network, preparation  # noqa: E402
from porting.training.config import TrainError  # noqa: E402
from porting.training.symbol_heads import LABEL_NAME  # noqa: E402

SMALL = dict(repeats=(0, 0, 0), align_feature_maps=True)


@pytest.fixture
def bars_on():
    progress.configure(True)
    yield
    progress.configure(None)


@pytest.mark.parametrize("repeats, size, batch", [((0, 0, 0), 32, 16), ((1, 1, 1), 75, 8)])
def test_memory_estimate_covers_the_executor_plan(repeats, size, batch):
    """The activations part is at least what MXNet's planner allocates for the bound executor, and not far above."""
    sym = network.build_symbol(10, (size, size), repeats=repeats, align_feature_maps=size < 75)
    est = memory.estimate(sym, (3, size, size), batch, states=2)
    mod = mx.mod.Module(sym, data_names=("data",), label_names=(LABEL_NAME,))
    mod.bind(data_shapes=[("data", (batch, 3, size, size))], label_shapes=[(LABEL_NAME, (batch,))])
    plan = [line for line in mod._exec_group.execs[0].debug_str().splitlines() if "MB allocated" in line]
    planned = int(plan[-1].split()[1]) << 20
    assert planned <= est.activations <= 2.5 * planned, (planned, est)
    arg, aux = checkpoint.param_shapes(sym, (3, size, size))
    learnable = sum(int(np.prod(s)) for s in arg.values())
    assert est.parameters == 4 * (learnable * 4 + sum(int(np.prod(s)) for s in aux.values()))  # value, grad, 2 states
    assert est.checkpoint == 4 * (learnable * 3 + sum(int(np.prod(s)) for s in aux.values()))


def test_memory_refusal_names_the_estimate_and_a_batch_that_fits(monkeypatch):
    import psutil

    sym = network.build_symbol(10, (32, 32), **SMALL)
    est = memory.estimate(sym, (3, 32, 32), 64, states=1)
    per_image = est.activations / 64
    available = est.parameters + est.runtime + int(10.5 * per_image)
    real = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=available))
    with pytest.raises(TrainError, match=r"training needs about .* per device \(batch 64 at 32x32: activations .* "
                                         r"for 64 image\(s\).*use --batch-size 10 or less"):
        memory.check_training_memory(sym, (3, 32, 32), 64, [mx.cpu()], states=1)
    memory.check_training_memory(sym, (3, 32, 32), 10, [mx.cpu()], states=1)


def _module(model_dir, batch):
    sym, arg, aux = mx.model.load_checkpoint(str(model_dir / "model"), 2)
    mod = mx.mod.Module(sym, data_names=("data",), label_names=(LABEL_NAME,))
    mod.bind(data_shapes=[("data", (batch, 3, 32, 32))], label_shapes=[(LABEL_NAME, (batch,))], for_training=False)
    mod.set_params(arg, aux)
    return mod


def test_small_validation_batches_are_padded_without_changing_the_metrics(digits_model, digits_data):
    """evaluate() on a module bound for 16 gives the same numbers from batches of 16 and of 5 (padded to 16)."""
    mod = _module(digits_model.model_dir, 16)
    metric = network.make_metric(mod.symbol, 10)
    full = loop.evaluate(mod, iterators.make_split_iterator(digits_data, "val", 16), metric)
    small = loop.evaluate(mod, iterators.make_split_iterator(digits_data, "val", 5), metric)
    assert full == pytest.approx(small, rel=1e-6)
    assert full["top1"] == pytest.approx(digits_model.rows[-1]["val_top1"], rel=1e-6)  # what training logged


def test_interrupted_checkpoint_leaves_no_orphan_and_keeps_the_record(digits_model, tmp_path, monkeypatch):
    run = shutil.copytree(digits_model.model_dir, tmp_path / "run")
    record = checkpoint.read_checkpoint(run)
    mod = _module(run, 16)
    mod.init_optimizer(optimizer="sgd")  # for save_optimizer_states

    def interrupted(fname):
        raise KeyboardInterrupt

    monkeypatch.setattr(mod, "save_optimizer_states", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(mod, run, "model", 3, record)
    assert not (run / "model-0003.params").exists() and not (run / "model-0003.states").exists()
    assert not [p for p in run.iterdir() if ".tmp-" in p.name]
    assert checkpoint.read_checkpoint(run)["epoch"] == 2  # still names the last complete epoch, files verified


def test_checkpoint_record_carries_the_metric_rows(digits_model):
    record = checkpoint.read_checkpoint(digits_model.model_dir)
    rows = json.loads((digits_model.model_dir / "metrics.json").read_text())["epochs"]
    assert record["metrics"] == rows and [r["epoch"] for r in rows] == [1, 2]


def test_verify_data_hashes_every_byte(digits_data, tmp_path, capsys):
    """The quick check samples a large file; --verify-data reads all of it (a flip between samples shows)."""
    data = shutil.copytree(digits_data, tmp_path / "data", ignore=shutil.ignore_patterns("digits_src"))
    raw = json.loads((data / "manifest.json").read_text())
    raw["integrity"] = {"full_sha256_below": 0, "chunks": 2, "chunk_bytes": 64}  # as if the .rec were huge
    for name, split in raw["splits"].items():
        split["sampled_sha256"] = {ext: integrity.sampled_sha256(data / f"{name}.{ext}", 2, 64)
                                   for ext in ("lst", "rec", "idx")}
    (data / "manifest.json").write_text(json.dumps(raw))
    rec = data / "train.rec"
    with open(rec, "r+b") as f:
        f.seek(rec.stat().st_size // 2 + 1)
        f.write(b"\x00\x01\x02")
    assert preparation.load_data(str(data)).path == data / "manifest.json"  # sampled: passes
    with pytest.raises(TrainError, match="train.rec does not match its recorded SHA-256"):
        preparation.load_data(str(data), full=True)
    argv = ["--data", str(data), "--model-dir", str(tmp_path / "run"), "--verify-data", "--repeats", "0,0,0",
            "--align-feature-maps", "--no-progress"]
    assert train_cli.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "does not match its recorded SHA-256" in err[0]
    assert not (tmp_path / "run").exists()


def test_epoch_and_evaluation_bars_on_a_terminal_only(digits_data, tmp_path, capsys, bars_on):
    argv = ["--data", str(digits_data), "--model-dir", str(tmp_path / "run"), "--repeats", "0,0,0",
            "--align-feature-maps", "--batch-size", "32", "--max-batches", "2", "--epochs", "1",
            "--preprocess-threads", "1", "--log-every", "1"]
    assert train_cli.main(argv) == 0
    err = capsys.readouterr().err
    # tqdm's bars with the elapsed<remaining (ETA) field, over 2 batches and over 6 (179 = 6 x 32) evaluation batches
    assert re.search(r"epoch 1/1: +\d+%\|.*\| \d/2 \[\d\d:\d\d<", err), err[-2000:]
    assert re.search(r"evaluate: +\d+%\|.*\| \d/6 \[\d\d:\d\d<", err), err[-2000:]
    assert "Speed:" in err and "epoch 1 done" in err  # the log lines stay
    progress.configure(None)
    shutil.rmtree(tmp_path / "run")
    assert train_cli.main(argv + ["--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/1:" not in err and "evaluate:" not in err and "epoch 1 done" in err
