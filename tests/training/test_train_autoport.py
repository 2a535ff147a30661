"""``porting.train --symbol PREFIX``: a network translated by autoport trains and predicts like the hand port.

A tiny slim network (two conv + batch norm blocks, pools, flatten, dropout, dense logits)
is written to a builder file and translated with ``python -m porting.autoport --tf
FILE:build`` at the digits data set's 32x32 crop; ``porting.train`` trains it for one short
epoch (and resumes it for a second), ``porting.predict`` classifies an image with the
resulting model directory. Shares the session's ``digits_data`` fixture (conftest.py).
"""
from __future__ import annotations

import json
import math
import textwrap

import numpy as np
import pytest

from porting import compat

mx = compat.import_mx()

from porting.cli import predict
from porting.cli import train as train_cli
from porting.training import checkpoint, config, network, preparation, symbol_heads  # noqa: E402
from porting.training.config import TrainError  # noqa: E402

pytestmark = pytest.mark.slow

BUILDER = textwrap.dedent('''
    from porting import compat
    tf = compat.import_tf()
    slim = compat.import_slim()

    def build(images, num_classes, is_training=False):
        with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm,
                            normalizer_params={"is_training": is_training, "scale": True, "decay": 0.9}):
            net = slim.conv2d(images, 8, 3, stride=2, scope="Conv1")
            net = slim.max_pool2d(net, 2, stride=2, scope="Pool1")
            net = slim.conv2d(net, 16, 3, scope="Conv2")
            net = slim.avg_pool2d(net, 2, stride=2, scope="Pool2")
        net = slim.flatten(net, scope="Flatten")
        net = slim.dropout(net, 0.8, is_training=is_training, scope="Dropout")
        logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")
        return logits, {"Logits": logits, "Predictions": tf.nn.softmax(logits, name="Predictions")}
''')

#: A short run: 4 updates of 16 images per epoch, on one decoding thread.
SHORT = ["--batch-size", "16", "--max-batches", "4", "--bn-momentum", "0.5", "--optimizer", "sgd", "--lr", "0.05",
         "--log-every", "2", "--preprocess-threads", "1"]


def _autoport(tmp_path_factory, size: int, classes: int = 10) -> str:
    from porting.cli.autoport import main

    folder = tmp_path_factory.mktemp(f"tiny{size}")
    builder = folder / "tiny.py"
    builder.write_text(BUILDER)
    prefix = str(folder / "tiny")
    assert main(["--tf", f"{builder}:build", "--size", str(size), "--classes", str(classes), "--out", prefix]) == 0
    return prefix


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """autoport's PREFIX of the tiny network at 32x32, 10 classes (the digits' crop and classes)."""
    return _autoport(tmp_path_factory, 32)


def test_train_config_options_reach_the_translated_symbol(tiny):
    cfg = config.TrainConfig(data="-", model_dir="-", symbol=tiny, label_smoothing=0.2, bn_momentum=0.8)
    sym, aux = network.network_symbol(cfg, 10, (32, 32))
    nodes = json.loads(sym.tojson())["nodes"]
    (head,) = [n for n in nodes if n["op"] == "SoftmaxOutput"]
    assert not aux and float(head["attrs"]["smooth_alpha"]) == pytest.approx(symbol_heads.smooth_alpha(0.2, 10))
    assert {n["attrs"]["momentum"] for n in nodes if n["op"] == "BatchNorm"} == {"0.8"}


def test_translated_network_trains_resumes_and_predicts(tiny, digits_data, tmp_path, capsys):
    model_dir = tmp_path / "run"
    argv = ["--symbol", tiny, "--data", str(digits_data), "--model-dir", str(model_dir), "--epochs", "1", *SHORT]
    assert train_cli.main(argv) == 0, capsys.readouterr().err[-3000:]
    assert "epoch 1 complete" in capsys.readouterr().out

    record = checkpoint.read_checkpoint(model_dir)
    assert record["epoch"] == 1 and record["num_update"] == 4 and record["config"]["symbol"] == tiny
    assert record["config"]["repeats"] == list(config.IRV2_OPTIONS["repeats"])  # untouched defaults
    assert (model_dir / "model-0001.params").is_file() and (model_dir / "model-0001.states").is_file()
    rows = json.loads((model_dir / "metrics.json").read_text())["epochs"]
    assert math.isfinite(rows[0]["train_ce"]) and math.isfinite(rows[0]["val_ce"]), rows

    # The saved symbol is plain MXNet with the hand port's head conventions.
    sym, arg, aux = mx.model.load_checkpoint(str(model_dir / "model"), 1)
    heads = [n for n in json.loads(sym.tojson())["nodes"] if n["op"] == "SoftmaxOutput"]
    assert [h["name"] for h in heads] == ["Logits/softmax"] and sym.list_arguments()[-1] == symbol_heads.LABEL_NAME
    assert {n["attrs"]["momentum"] for n in json.loads(sym.tojson())["nodes"] if n["op"] == "BatchNorm"} == {"0.5"}
    assert arg["Logits_weight"].shape == (10, 256) and set(aux) == {
        "Conv1/BatchNorm_moving_mean", "Conv1/BatchNorm_moving_var",
        "Conv2/BatchNorm_moving_mean", "Conv2/BatchNorm_moving_var"}

    # --resume continues it (the symbol is rebuilt from PREFIX and checked against the checkpoint).
    assert train_cli.main(["--model-dir", str(model_dir), "--resume", "--epochs", "2"]) == 0
    assert checkpoint.read_checkpoint(model_dir)["num_update"] == 8
    capsys.readouterr()

    # porting.predict on the model directory: top-k of one image.
    image = next((digits_data / "digits_src").rglob("*.png"))
    assert predict.main(["--model", str(model_dir / "model"), str(image), "--top-k", "3", "--json"]) == 0
    (pred,) = json.loads(capsys.readouterr().out)["predictions"]
    assert len(pred["top"]) == 3 and all(0.0 <= score <= 1.0 for _, score in pred["top"])
    assert [s for _, s in pred["top"]] == sorted((s for _, s in pred["top"]), reverse=True)


def test_run_starts_from_the_autoport_params_and_replaces_a_head_of_another_width(tiny, digits_data, tmp_path):
    want_arg, want_aux = checkpoint.load_params_file(f"{tiny}-0000.params")
    session = preparation.prepare(config.TrainConfig(data=str(digits_data), model_dir=str(tmp_path / "same"),
                                                    symbol=tiny, batch_size=4))
    try:
        arg, aux = session.module.get_params()
    finally:
        session.close()
    for name in ("Conv1_weight", "Conv2/BatchNorm_gamma", "Logits_weight", "Logits_bias"):
        np.testing.assert_array_equal(arg[name].asnumpy(), want_arg[name].asnumpy())
    np.testing.assert_array_equal(aux["Conv1/BatchNorm_moving_var"].asnumpy(),
                                  want_aux["Conv1/BatchNorm_moving_var"].asnumpy())
    assert session.metrics_log.title.startswith("build (autoport tiny) at 32x32, 10 classes")

    # The same network translated for 7 classes: new 10-wide logits, the body from the file.
    seven = str(tmp_path / "seven")
    inference = mx.sym.load(f"{tiny}-symbol.json")
    with open(f"{seven}-symbol.json", "w") as f:
        f.write(symbol_heads.resize_logits(inference, 7).tojson())
    blob = {f"arg:{k}": v for k, v in want_arg.items()} | {f"aux:{k}": v for k, v in want_aux.items()}
    blob["arg:Logits_weight"], blob["arg:Logits_bias"] = mx.nd.ones((7, 256)), mx.nd.ones((7,))
    mx.nd.save(f"{seven}-0000.params", blob)
    session = preparation.prepare(config.TrainConfig(data=str(digits_data), model_dir=str(tmp_path / "seven_run"),
                                                    symbol=seven, batch_size=4))
    try:
        arg, _ = session.module.get_params()
        outputs = session.module.output_shapes
    finally:
        session.close()
    assert outputs == [("Logits/softmax_output", (4, 10))]
    assert arg["Logits_weight"].shape == (10, 256) and not np.all(arg["Logits_weight"].asnumpy() == 1.0)
    np.testing.assert_array_equal(arg["Conv2_weight"].asnumpy(), want_arg["Conv2_weight"].asnumpy())


def test_symbol_translated_for_another_input_size_is_a_clear_error(tmp_path_factory, digits_data, tmp_path, capsys):
    other = _autoport(tmp_path_factory, 24)
    capsys.readouterr()
    model_dir = tmp_path / "run"
    argv = ["--symbol", other, "--data", str(digits_data), "--model-dir", str(model_dir), "--epochs", "1", *SHORT]
    assert train_cli.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and err[0].startswith(f"error: --symbol {other} was translated for 24x24 input, the "
                                               f"data's input is 32x32"), err
    assert "--size 24x24" in err[0] and "autoport the network again with --size 32x32" in err[0], err[0]
    assert not model_dir.exists()

    # Without the report (which names the size) the shapes still give it away.
    bare = tmp_path / "bare"
    for suffix in ("-symbol.json", "-0000.params"):
        (tmp_path / f"bare{suffix}").write_bytes(open(f"{other}{suffix}", "rb").read())
    argv[1] = str(bare)
    assert train_cli.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and err[0].startswith(f"error: --symbol {bare} does not take the data's input 3x32x32")
    assert "report.json, which names the translated size, is missing" in err[0], err[0]
    assert not model_dir.exists()


def test_irv2_options_and_missing_files_are_one_line_errors(tiny, digits_data, tmp_path, capsys):
    base = ["--symbol", tiny, "--data", str(digits_data), "--model-dir", str(tmp_path / "m")]
    assert train_cli.main(base + ["--repeats", "1,1,1", "--align-feature-maps"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "--align-feature-maps, --repeats shape the hand-ported Inception-ResNet-v2 only" in err[0]
    assert train_cli.main(base + ["--dropout-keep-prob", "0.8"]) == 2  # even at its default: it would not apply
    assert "--dropout-keep-prob shapes the hand-ported" in capsys.readouterr().err
    with pytest.raises(TrainError, match="--aux-logits shapes the hand-ported"):
        config.validate(config.TrainConfig(data="-", model_dir="-", symbol=tiny, aux_logits=False))
    missing = str(tmp_path / "nothing")
    assert train_cli.main(["--symbol", missing] + base[2:]) == 2
    assert f"{missing}-symbol.json not found (write it with `python -m porting.autoport" in capsys.readouterr().err
