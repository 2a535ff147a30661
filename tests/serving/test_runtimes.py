"""porting.serving.predictor runtimes: MXNet (verified symbol or rewritten) and onnxruntime give the same scores;
the measured choice of runtime is recorded beside the model and read back only where it applies."""
from __future__ import annotations

import json

import numpy as np
import pytest

from porting import compat
from porting.serving import predictor as serving
from porting.serving.model_loading import LoadedModel
from porting.serving.preprocessing import Preprocessing

SIZE, CLASSES = 75, 5


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> LoadedModel:
    """The reduced Inception-ResNet-v2 (repeats 1/1/1) at 75x75 with random weights and statistics, gammas != 1."""
    mx = compat.import_mx()
    from mx_impl import inception_resnet_v2 as irv2

    sym = irv2.get_symbol(CLASSES, create_aux_logits=False, repeats=(1, 1, 1), image_size=SIZE)
    arg_shapes, _, aux_shapes = sym.infer_shape(data=(1, 3, SIZE, SIZE))
    rng = np.random.default_rng(7)
    args = {name: mx.nd.array(rng.uniform(0.5, 2.0, s) if name.endswith("_gamma") else rng.normal(0, 0.1, s))
            for name, s in zip(sym.list_arguments(), arg_shapes) if name not in ("data", "softmax_label")}
    aux = {name: mx.nd.array(rng.uniform(0.3, 2.0, s) if name.endswith("_var") else rng.normal(0, 0.2, s))
           for name, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    prefix = tmp_path_factory.mktemp("served") / "tiny"
    return LoadedModel(prefix, 0, {}, sym, args, aux, None, Preprocessing("inception", (3, SIZE, SIZE)),
                       [str(k) for k in range(CLASSES)])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> LoadedModel:
    """A small residual network (conv + BN + ReLU, a scaled 1x1 residual, pooling, FC) at 32x32: seconds to serve."""
    mx = compat.import_mx()
    data = mx.sym.Variable("data")
    net = mx.sym.Convolution(data, num_filter=8, kernel=(3, 3), pad=(1, 1), no_bias=True, name="stem")
    net = mx.sym.Activation(mx.sym.BatchNorm(net, fix_gamma=False, name="stem_bn"), act_type="relu")
    up = mx.sym.Convolution(net, num_filter=8, kernel=(1, 1), name="up")
    net = mx.sym.Activation(net + mx.sym._internal._mul_scalar(up, scalar=0.2), act_type="relu")
    net = mx.sym.Pooling(net, kernel=(1, 1), global_pool=True, pool_type="avg")
    sym = mx.sym.FullyConnected(mx.sym.flatten(net), num_hidden=CLASSES, name="logits")
    arg_shapes, _, aux_shapes = sym.infer_shape(data=(1, 3, 32, 32))
    rng = np.random.default_rng(11)
    args = {name: mx.nd.array(rng.uniform(0.5, 2.0, s) if name.endswith("_gamma") else rng.normal(0, 0.3, s))
            for name, s in zip(sym.list_arguments(), arg_shapes) if name != "data"}
    aux = {name: mx.nd.array(rng.uniform(0.3, 2.0, s) if name.endswith("_var") else rng.normal(0, 0.2, s))
           for name, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    prefix = tmp_path_factory.mktemp("tiny") / "tiny"
    return LoadedModel(prefix, 0, {}, sym, args, aux, None, Preprocessing("inception", (3, 32, 32)),
                       [str(k) for k in range(CLASSES)])


def test_runtimes_and_rewrites_give_the_same_scores(model):
    images = np.random.default_rng(8).uniform(-1, 1, (3, 3, SIZE, SIZE)).astype(np.float32)
    verified = serving.Predictor(model, batch_size=2, rewrite=False).scores(images)  # 2 + a padded 1
    rewritten = serving.Predictor(model, batch_size=2)
    onnx = serving.Predictor(model, batch_size=2, runtime="onnxruntime")
    assert rewritten.rewrites["batch norms folded"] and len(rewritten.folded) == 4
    assert verified.shape == (3, CLASSES) and np.ptp(verified) > 1e-2  # scores that tell the classes apart
    np.testing.assert_allclose(rewritten.scores(images), verified, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(onnx.scores(images), verified, rtol=1e-4, atol=1e-6)


def test_unknown_runtime_is_named(model):
    with pytest.raises(serving.PredictError, match="unknown runtime 'tvm'; expected one of mxnet, onnxruntime"):
        serving.Predictor(model, runtime="tvm")


def test_measured_choice_is_recorded_and_read_back_only_where_it_applies(tiny):
    model = tiny
    path = serving.runtime_record_path(model)
    assert path.name == "tiny-runtime.json"
    assert serving.Predictor(model).rewrites == {"batch norms folded": ["stem_bn"], "residual scales folded": ["up"]}
    absent = serving.choose_runtime(model)
    assert absent.runtime == "mxnet" and "no runtime measurement recorded" in absent.reason
    record = serving.measure_runtimes(model, batch_size=2, rounds=1, steps=1)
    assert set(record["images_per_s"]) == {"mxnet", "onnxruntime"} and min(record["images_per_s"].values()) > 0
    assert record["fastest"] == max(record["images_per_s"], key=record["images_per_s"].get)
    assert record["max_score_difference"] < 1e-4
    serving.write_runtime_record(model, record)
    chosen = serving.choose_runtime(model)
    assert chosen.runtime == record["fastest"] and "measured fastest on this machine" in chosen.reason
    # Another machine's (or another network's) measurement does not decide for this one.
    path.write_text(json.dumps({**record, "fastest": "onnxruntime", "machine": {"cpu": "elsewhere"}}))
    other = serving.choose_runtime(model)
    assert other.runtime == "mxnet" and "was measured for another machine;" in other.reason
    path.write_text("{not json")
    assert serving.choose_runtime(model).runtime == "mxnet"
    path.unlink()


def test_predict_cli_measures_records_and_states_the_runtime(tiny, tmp_path, capsys):
    """``porting.predict`` on a converted pair: --measure-runtime writes the record, the next run uses it and says so."""
    import cv2

    from porting.cli import predict

    mx = compat.import_mx()
    model = tiny
    prefix = tmp_path / "tiny"
    model.symbol.save(f"{prefix}-symbol.json")
    mx.nd.save(f"{prefix}-0000.params", {**{f"arg:{k}": v for k, v in model.arg_params.items()},
                                         **{f"aux:{k}": v for k, v in model.aux_params.items()}})
    image = tmp_path / "a.png"
    assert cv2.imwrite(str(image), np.random.default_rng(9).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    flags = ["--model", str(prefix), "--size", "32", "--preprocess", "inception", "--batch-size", "2"]
    assert predict.main([*flags, "--json", str(image)]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["runtime"]["name"] == "mxnet" and "no runtime measurement recorded" in report["runtime"]["reason"]
    assert "runtime: mxnet (the default: no runtime measurement recorded" in captured.err
    assert predict.main([*flags, "--measure-runtime", "--json"]) == 0
    record = json.loads((tmp_path / "tiny-runtime.json").read_text())
    captured = capsys.readouterr()
    assert json.loads(captured.out)["fastest"] == record["fastest"]
    assert f"fastest {record['fastest']} (recorded in {tmp_path / 'tiny-runtime.json'})" in captured.err
    for runtime in ("mxnet", "onnxruntime"):
        assert predict.main([*flags, "--json", "--runtime", runtime, "--top-k", str(CLASSES), str(image)]) == 0
        report[runtime] = json.loads(capsys.readouterr().out)
        assert report[runtime]["runtime"] == {"name": runtime, "reason": "given with --runtime"}
    by_name = [dict(report[runtime]["predictions"][0]["top"]) for runtime in ("mxnet", "onnxruntime")]
    assert by_name[0].keys() == by_name[1].keys() and all(
        abs(by_name[0][k] - by_name[1][k]) < 1e-5 for k in by_name[0])
    assert predict.main([*flags, "--json", str(image)]) == 0
    assert json.loads(capsys.readouterr().out)["runtime"]["name"] == record["fastest"]
    assert predict.main([*flags, "--runtime", "mxnet", "--measure-runtime"]) == 2
    assert "--runtime and --measure-runtime exclude each other" in capsys.readouterr().err
