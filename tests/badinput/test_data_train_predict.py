"""Bad input to ``porting.data``, ``porting.train`` and ``porting.predict``: one clear line each, nothing half-written.

One parametrised case per kind of bad input (``CASES``). Each runs the command's
``main(argv)`` in this process and asserts the exit code, exactly one ``error:`` line on
stderr (predict: one per bad image, the others still predicted, as the README promises;
argparse's own errors read ``python -m porting.X: error: ...``), no ``Traceback``, and
that the watched folder holds nothing new or only complete files. A few kinds are
odd-but-valid input that must work (exit 0). Native crashes (a damaged ``.rec`` aborted
MXNet in C++) and Ctrl-C run in a subprocess: there the process is the point.

The disk-full cases make one write fail with ``OSError(ENOSPC)`` (the OS boundary,
monkeypatched), a read-only folder makes ``os.open``/``os.mkdir``/``open`` raise ``EROFS``
inside it, and a machine short of memory is ``psutil.virtual_memory`` reporting little.
Everything else is real: real images, real MXNet training, real files.
"""
from __future__ import annotations

import builtins
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest

from porting import compat

mx = compat.import_mx()

import cv2  # noqa: E402
import psutil  # noqa: E402
from scipy.io import savemat  # noqa: E402

from mx_impl import inception_resnet_v2 as irv2  # noqa: E402
from porting import util  # noqa: E402
from porting.cli import data as data_cli  # noqa: E402
from porting.cli import predict as predict_cli  # noqa: E402
from porting.cli import train as train_cli  # noqa: E402
from porting.data import packing  # noqa: E402
from porting.data.manifest import load_manifest  # noqa: E402
from porting.serving import prediction  # noqa: E402
from porting.training import checkpoint, config, loop  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
#: One error line: ours (``error: ...``) or argparse's (``python -m porting.data: error: ...``).
ERROR_LINE = re.compile(r"^(python -m porting\.\w+: )?error: ")
MAINS = {"data": data_cli.main, "train": train_cli.main, "predict": predict_cli.main}
#: A training run that takes about a second: no residual blocks, slim's SAME stem at 32x32.
TRAIN_FAST = ["--repeats", "0,0,0", "--align-feature-maps", "--bn-momentum", "0.9", "--batch-size", "4",
              "--max-batches", "1", "--epochs", "1", "--preprocess-threads", "1", "--log-every", "1"]


# -- fixtures: a tiny source, its data set, a model trained on it, a "converted" model ------


def write_image(path: Path, seed: int, h: int = 40, w: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def make_folders(root: Path, classes=("ant", "bee"), per_class: int = 12, seed0: int = 0) -> Path:
    for c, cls in enumerate(classes):
        for i in range(per_class):
            write_image(root / cls / f"img_{i:02d}.png", seed0 + 1000 * c + i)
    return root


def huge_png(path: Path, height: int = 100_000, width: int = 100_000) -> Path:
    """A PNG whose header claims ``height`` x ``width`` pixels (10^10 by default), a few bytes long."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The shared read-only inputs: a source, its data set, a trained model, a converted model."""
    root = tmp_path_factory.mktemp("badinput")
    src = make_folders(root / "src")
    data = root / "data"
    assert data_cli.main(["--layout", "folders", "--src", str(src), "--out", str(data), "--resize", "36",
                          "--crop", "32x32", "--val", "0.2", "--no-progress"]) == 0
    run = root / "run"
    loop.train(config.TrainConfig(data=str(data), model_dir=str(run), repeats=(0, 0, 0), align_feature_maps=True,
                                  bn_momentum=0.9, batch_size=4, max_batches=2, epochs=2, preprocess_threads=1))
    # A model as porting.convert writes one: a plain inference symbol and PREFIX-0000.params, no checkpoint.json.
    converted = root / "converted" / "tiny"
    converted.parent.mkdir()
    sym = irv2.get_symbol(2, create_aux_logits=False, align_feature_maps=True, repeats=(0, 0, 0), image_size=(32, 32))
    arg_shapes, _, aux_shapes = sym.infer_shape(data=(1, 3, 32, 32))
    rng = np.random.default_rng(0)
    arg = {n: mx.nd.array(rng.normal(0, 0.05, s)) for n, s in zip(sym.list_arguments(), arg_shapes) if n != "data"}
    aux = {n: mx.nd.array(rng.uniform(0.5, 1.5, s)) for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    mx.model.save_checkpoint(str(converted), 0, sym, arg, aux)
    return SimpleNamespace(src=src, data=data, model=run / "model", converted=converted)


@dataclass
class Env:
    """What a case works with: its own temporary folder and the shared inputs."""

    tmp: Path
    world: SimpleNamespace
    monkeypatch: pytest.MonkeyPatch
    lock_fd: int | None = None

    def copy(self, path: Path, name: str) -> Path:
        dst = self.tmp / name
        shutil.copytree(path, dst)
        return dst

    def train_argv(self, data: Path | None = None, model_dir: Path | None = None, *extra) -> list:
        return ["--data", data or self.world.data, "--model-dir", model_dir or self.tmp / "run", *TRAIN_FAST, *extra]


# -- OS boundary: a full disk, a read-only folder, a machine short of memory ------------------


def fail_write(monkeypatch, name: str) -> None:
    """The atomic write of the file called ``name`` writes its bytes, then fails with ENOSPC."""
    real = util.atomic_write_via

    def failing(path, write, *args, **kwargs):
        if Path(path).name != name:
            return real(path, write, *args, **kwargs)

        def full(tmp):
            write(tmp)
            raise OSError(errno.ENOSPC, "No space left on device", tmp)

        return real(path, full, *args, **kwargs)

    monkeypatch.setattr(util, "atomic_write_via", failing)


def read_only(monkeypatch, folder: Path) -> None:
    """Every write inside ``folder`` fails with EROFS, as on a read-only mount (root ignores chmod)."""
    folder = os.path.realpath(folder)
    real_open, real_mkdir, real_builtin_open = os.open, os.mkdir, builtins.open

    def inside(path) -> bool:
        return isinstance(path, (str, bytes, os.PathLike)) and \
            os.path.realpath(os.fsdecode(path)).startswith(folder + os.sep) or os.path.realpath(os.fsdecode(path)) == folder

    def refuse(path):
        raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))

    def ro_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def ro_mkdir(path, *args, **kwargs):
        if inside(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def ro_builtin_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and not isinstance(file, int) and inside(file):
            refuse(file)
        return real_builtin_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "mkdir", ro_mkdir)
    monkeypatch.setattr(builtins, "open", ro_builtin_open)


def low_memory(monkeypatch, available: int) -> None:
    real = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=available))


# -- snapshots: "nothing new" ----------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, tuple[int, int]] | None:
    """Every file below ``folder`` with its size and mtime; None when there is no such path."""
    if not folder.exists():
        return None
    if folder.is_file():
        return {"": (folder.stat().st_size, folder.stat().st_mtime_ns)}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file()}


def no_partial_files(folder: Path) -> None:
    """No temporary, staging or partial file anywhere below ``folder``."""
    if folder.is_dir():
        left = [p.name for p in folder.rglob("*") if util.is_temp_name(p.name) or p.name.startswith(".staging-")
                or p.name.endswith(".partial")]
        assert not left, left


def no_uncommitted_epoch(model_dir: Path) -> None:
    """Every params/states file is named by checkpoint.json; the metrics claim no other epoch."""
    record = json.loads((model_dir / checkpoint.CHECKPOINT_NAME).read_text()) \
        if (model_dir / checkpoint.CHECKPOINT_NAME).is_file() else {"epochs": {}}
    named = {int(e) for e in record["epochs"]}
    files = {int(re.search(r"-(\d{4})\.", p.name).group(1)) for p in model_dir.glob("*-[0-9][0-9][0-9][0-9].*")}
    assert files <= named, (files, named)
    if (model_dir / "metrics.json").is_file():
        rows = json.loads((model_dir / "metrics.json").read_text())["epochs"]
        assert {int(r["epoch"]) for r in rows} <= named, (rows, named)
    if not named:
        assert not (model_dir / "curve.png").exists()
    no_partial_files(model_dir)


# -- the cases -------------------------------------------------------------------------------


@dataclass
class Case:
    """One kind of bad input.

    ``setup(env)`` prepares files and returns ``(argv, watched folder)``; ``message`` is a
    substring of the error line; ``errors`` the number of error lines; ``then(env, out, err)``
    any further check (the watched folder's contents, what was printed).
    """

    id: str
    command: str
    setup: Callable[[Env], tuple[list, Path | None]]
    message: str = ""
    rc: int = 2
    errors: int = 1
    then: Callable | None = None
    unchanged: bool = True  # a refused run leaves the watched folder as it was


def _data(env: Env, *extra, src=None, out=None):
    out = out or env.tmp / "out"
    return ["--layout", "folders", "--src", src or env.world.src, "--out", out, "--resize", "36", "--crop", "32x32",
            *extra], out


def _src(env: Env, **kwargs) -> Path:
    return make_folders(env.tmp / "src", **kwargs)


def _oxford102(env: Env, labels=(1, 2, 1, 2, 1, 2, 1, 2), labels_mat=True) -> Path:
    root = env.tmp / "102"
    for i in range(1, len(labels) + 1):
        write_image(root / "jpg" / f"image_{i:05d}.jpg", 500 + i)
    if labels_mat:
        savemat(str(root / "imagelabels.mat"), {"labels": np.asarray([labels], np.uint8)})
    return root


def _case_empty_class(env):
    src = _src(env)
    (src / "emu").mkdir()
    return _data(env, src=src)


def _case_all_bad(env):
    src = _src(env)
    (src / "emu").mkdir()
    (src / "emu" / "a.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return _data(env, src=src)


def _case_too_small(env):
    src = _src(env)
    write_image(src / "emu" / "only.png", 777)
    return _data(env, src=src)


def _case_no_class_folders(env):
    src = env.tmp / "flat"
    write_image(src / "a.png", 1)
    return _data(env, src=src)


def _case_oxford17_count(env):
    for i in range(1, 82):
        write_image(env.tmp / "17" / "jpg" / f"image_{i:04d}.jpg", i, 8, 8)
    return ["--layout", "oxford17", "--src", env.tmp / "17", "--out", env.tmp / "out"], env.tmp / "out"


def _case_ox102_missing(env):
    return ["--layout", "oxford102", "--src", _oxford102(env, labels_mat=False), "--out", env.tmp / "out"], env.tmp / "out"


def _case_ox102_count(env):
    src = _oxford102(env)
    savemat(str(src / "imagelabels.mat"), {"labels": np.asarray([[1, 2, 1]], np.uint8)})
    return ["--layout", "oxford102", "--src", src, "--out", env.tmp / "out"], env.tmp / "out"


def _case_ox102_corrupt(env):
    src = _oxford102(env)
    (src / "imagelabels.mat").write_bytes(b"MATLAB? no")
    return ["--layout", "oxford102", "--src", src, "--out", env.tmp / "out"], env.tmp / "out"


def _case_out_is_file(env):
    (env.tmp / "out").write_text("a file")
    return _data(env)


def _case_out_under_file(env):
    (env.tmp / "file").write_text("a file")
    return _data(env, out=env.tmp / "file" / "out")


def _case_out_proc(env):
    return _data(env, out=Path("/proc/porting-data-out"))


def _case_out_foreign(env):
    (env.tmp / "out").mkdir()
    (env.tmp / "out" / "thesis.tex").write_text("x")
    return _data(env)


def _case_out_other_dataset(env):
    argv, out = _data(env, src=_src(env, seed0=50_000))
    assert data_cli.main([*map(str, argv), "--no-progress"]) == 0
    return _data(env)  # the shared source into the same --out


def _case_out_inside_src(env):
    src = _src(env)
    return _data(env, src=src, out=src / "out")[0], src


def _then_src_untouched(env, out, err):
    assert sorted(p.name for p in (env.tmp / "src").iterdir()) == ["ant", "bee"]  # no out/, no out/.lock


def _case_single_class(env):
    return _data(env, src=_src(env, classes=("ant",)))


def _case_changed_split(env):
    out = env.copy(env.world.data, "out")
    return _data(env, "--val", "0.25", out=out)


def _case_readonly_rerun(env):
    out = env.copy(env.world.data, "out")
    argv, _ = _data(env, "--val", "0.2", out=out)
    read_only(env.monkeypatch, out)
    return argv, out


def _case_readonly_changed(env):
    out = env.copy(env.world.data, "out")
    argv, _ = _data(env, "--val", "0.2", "--seed", "3", "--force", out=out)
    read_only(env.monkeypatch, out)
    return argv, out


def _case_huge_image(env):
    src = _src(env)
    huge_png(src / "ant" / "huge.png")
    return _data(env, src=src)


def _then_huge_skipped(env, out, err):
    assert "skipped: ant/huge.png: image of 100000x100000 pixels (10,000,000,000) is above OpenCV's limit" in err
    m = load_manifest(env.tmp / "out", verify="quick")
    assert [s["path"] for s in m.skipped] == ["ant/huge.png"] and m.splits["train"].count + m.splits["val"].count == 24


def _case_disk_full_packing(env):
    real = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name.endswith(".lst.partial"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    env.monkeypatch.setattr(Path, "write_text", write_text)
    return _data(env)


def _case_disk_full_commit(env):
    fail_write(env.monkeypatch, "manifest.json")
    return _data(env)


def _then_no_dataset(env, out, err):
    out = env.tmp / "out"
    assert not (out / "manifest.json").exists()
    no_partial_files(out)


# train -----------------------------------------------------------------------------------


def _case_manifest_missing(env):
    (env.tmp / "nothing").mkdir()
    return env.train_argv(env.tmp / "nothing"), env.tmp / "run"


def _case_manifest_json(env):
    data = env.copy(env.world.data, "data")
    (data / "manifest.json").write_text("{ not json")
    return env.train_argv(data), env.tmp / "run"


def _case_manifest_field(env):
    data = env.copy(env.world.data, "data")
    raw = json.loads((data / "manifest.json").read_text())
    del raw["image"]
    (data / "manifest.json").write_text(json.dumps(raw))
    return env.train_argv(data), env.tmp / "run"


def _case_resume_nothing(env):
    return ["--resume", "--model-dir", env.tmp / "run"], env.tmp / "run"


def _trained_copy(env) -> Path:
    return env.copy(env.world.model.parent, "run")


def _case_resume_conflict(env):
    return ["--resume", "--model-dir", _trained_copy(env), "--lr", "0.5"], env.tmp / "run"


def _case_resume_pretrained(env):
    return ["--resume", "--model-dir", _trained_copy(env), "--pretrained", env.tmp / "x"], env.tmp / "run"


def _case_resume_other_data(env):
    run = _trained_copy(env)
    other = env.tmp / "other"
    assert data_cli.main(["--layout", "folders", "--src", str(_src(env, seed0=9000)), "--out", str(other),
                          "--resize", "36", "--crop", "32x32", "--val", "0.2", "--no-progress"]) == 0
    return ["--resume", "--model-dir", run, "--data", other, "--epochs", "3"], run


def _case_holds_run(env):
    run = _trained_copy(env)
    return env.train_argv(model_dir=run), run


def _case_symbol_options(env):
    return env.train_argv(None, None, "--symbol", env.tmp / "net"), env.tmp / "run"


def _case_bad_values(env):
    return env.train_argv(None, None, "--epochs", "0", "--lr", "-1"), env.tmp / "run"


def _case_model_dir_file(env):
    (env.tmp / "run").write_text("a file")
    return env.train_argv(), env.tmp / "run"


def _case_model_dir_under_file(env):
    (env.tmp / "file").write_text("a file")
    return env.train_argv(model_dir=env.tmp / "file" / "run"), env.tmp / "file"


def _case_model_dir_proc(env):
    return env.train_argv(model_dir=Path("/proc/porting-train-run")), env.tmp / "run"


def _case_locked(env):
    run = env.tmp / "run"
    run.mkdir()
    env.lock_fd = util.acquire_lock(run / checkpoint.LOCK_NAME)  # as another process would (flock: per open file)
    return env.train_argv(model_dir=run), run


def _then_release_lock(env, out, err):
    os.close(env.lock_fd)


def _case_rec_truncated(env):
    data = env.copy(env.world.data, "data")
    with open(data / "train.rec", "r+b") as f:
        f.truncate(f.seek(0, os.SEEK_END) - 100)
    return env.train_argv(data), env.tmp / "run"


def _strip_digests(data: Path) -> None:
    raw = json.loads((data / "manifest.json").read_text())
    for split in raw["splits"].values():
        split.pop("sha256", None), split.pop("sampled_sha256", None)
    raw.pop("integrity", None)
    (data / "manifest.json").write_text(json.dumps(raw))


def _case_idx_offsets(env):
    data = env.copy(env.world.data, "data")
    _strip_digests(data)  # as a manifest without content hashes: the index check alone must catch it
    lines = (data / "train.idx").read_text().splitlines()
    key, offset = lines[3].split("\t")
    bumped = str(int(offset) + 4)
    lines[3] = f"{key}\t{bumped}"
    text = "\n".join(lines) + "\n"
    if len(bumped) != len(offset):  # keep the size: only the content is damaged
        pytest.skip("offset changed length")
    (data / "train.idx").write_text(text)
    return env.train_argv(data), env.tmp / "run"


def _case_no_hashes(env):
    data = env.copy(env.world.data, "data")
    _strip_digests(data)
    return env.train_argv(data), env.tmp / "run"


def _then_trained_with_warning(env, out, err):
    assert "no content hashes recorded for the quick check; re-run porting.data to add them" in err
    assert checkpoint.read_checkpoint(env.tmp / "run")["epoch"] == 1


def _case_val_small(env):
    return env.train_argv(None, None, "--batch-size", "16"), env.tmp / "run"  # val has 4 images, train 20


def _then_val_evaluated(env, out, err):
    rows = json.loads((env.tmp / "run" / "metrics.json").read_text())["epochs"]
    assert len(rows) == 1 and rows[0]["val_top1"] in (0.0, 0.25, 0.5, 0.75, 1.0), rows  # 4 images: no padding counted
    assert "evaluating in batches of 4" in err


def _case_train_small(env):
    return env.train_argv(None, None, "--batch-size", "64"), env.tmp / "run"


def _translated(env, size: int) -> Path:
    """A network as autoport writes one (symbol, report naming its size), here built by hand: conv, global pool, dense."""
    prefix = env.tmp / "net"
    data = mx.sym.Variable("data")
    net = mx.sym.Convolution(data, kernel=(3, 3), stride=(2, 2), num_filter=4, name="Conv1")
    net = mx.sym.Pooling(net, kernel=(1, 1), global_pool=True, pool_type="avg", name="Pool")
    net = mx.sym.FullyConnected(mx.sym.flatten(net), num_hidden=2, name="Logits")
    (Path(f"{prefix}-symbol.json")).write_text(net.tojson())
    Path(f"{prefix}-report.json").write_text(json.dumps({"autoport": {"network": "net", "size": [size, size]}}))
    return prefix


def _case_symbol_size(env):
    return ["--symbol", _translated(env, 24), "--data", env.world.data, "--model-dir", env.tmp / "run",
            "--batch-size", "4", "--max-batches", "1", "--epochs", "1", "--preprocess-threads", "1"], env.tmp / "run"


def _case_symbol_missing(env):
    return ["--symbol", env.tmp / "nothing", "--data", env.world.data, "--model-dir", env.tmp / "run"], env.tmp / "run"


def _case_pretrained_missing(env):
    return env.train_argv(None, None, "--pretrained", env.tmp / "slim"), env.tmp / "run"


def _case_low_memory(env):
    low_memory(env.monkeypatch, 64 << 20)
    return env.train_argv(), env.tmp / "run"


def _case_low_disk(env):
    real = shutil.disk_usage
    env.monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=1 << 20))
    return env.train_argv(), env.tmp / "run"


def _disk_full_at(name: str):
    def setup(env):
        fail_write(env.monkeypatch, name)
        return env.train_argv(), env.tmp / "run"

    return setup


def _then_epoch_not_claimed(env, out, err):
    no_uncommitted_epoch(env.tmp / "run")
    assert not (env.tmp / "run" / checkpoint.CHECKPOINT_NAME).exists()
    assert not list((env.tmp / "run").glob("model-0001.*"))


def _then_epoch_saved_metrics_rebuilt(env, out, err):
    run = env.tmp / "run"
    no_uncommitted_epoch(run)
    assert checkpoint.read_checkpoint(run)["epoch"] == 1  # verified: the files it names are intact
    env.monkeypatch.undo()
    assert train_cli.main(["--resume", "--model-dir", str(run), "--no-progress"]) == 0  # nothing to train
    rows = json.loads((run / "metrics.json").read_text())["epochs"]
    assert [r["epoch"] for r in rows] == [1] and (run / "curve.png").is_file()
    assert (run / "metrics.csv").read_text().count("\n") == 2


def _dist(env):
    env.monkeypatch.delenv("DMLC_ROLE", raising=False)
    return env.train_argv(None, None, "--kv-store", "dist_sync"), env.tmp / "run"


# predict ---------------------------------------------------------------------------------


def _val_images(env, n: int = 1) -> list[Path]:
    items = prediction.read_list(env.world.data / "val.lst", env.world.src)
    return [p for p, _ in items[:n]]


def _predict(env, *extra, model=None):
    return ["--model", model or env.world.model, *extra], (model or env.world.model).parent


def _case_predict_missing_model(env):
    return _predict(env, _val_images(env)[0], model=env.tmp / "nothing" / "model")


def _case_converted_bare(env):
    return _predict(env, _val_images(env)[0], model=env.world.converted)


def _case_converted_partial(env):
    return _predict(env, _val_images(env)[0], "--size", "32", "--mean-rgb", "120,120,120", model=env.world.converted)


def _case_converted_flags_clash(env):
    return _predict(env, _val_images(env)[0], "--size", "32", "--preprocess", "inception", "--resize", "40",
                    model=env.world.converted)


def _case_converted_wrong_size(env):
    return _predict(env, _val_images(env)[0], "--size", "8", "--preprocess", "inception", model=env.world.converted)


def _case_converted_labels(env):
    (env.tmp / "names.txt").write_text("ant\nbee\ncat\n")
    return _predict(env, _val_images(env)[0], "--size", "32", "--preprocess", "inception", "--labels",
                    env.tmp / "names.txt", model=env.world.converted)


def _case_flags_on_trained(env):
    return _predict(env, _val_images(env)[0], "--size", "32", "--preprocess", "inception")


def _case_bad_mean(env):
    return _predict(env, _val_images(env)[0], "--size", "32", "--mean-rgb", "1,2", "--std-rgb", "1,1,1",
                    model=env.world.converted)


def _case_bad_size(env):
    return _predict(env, _val_images(env)[0], "--size", "32by32", "--preprocess", "inception",
                    model=env.world.converted)


def _case_epoch(env):
    return _predict(env, _val_images(env)[0], "--epoch", "7")


def _case_prefix(env):
    return _predict(env, _val_images(env)[0], model=env.world.model.parent / "other")


def _case_damaged_params(env):
    run = _trained_copy(env)
    with open(run / "model-0002.params", "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"\0" * 8)
    return _predict(env, _val_images(env)[0], model=run / "model")


def _case_train_images(env):
    return _predict(env, "--eval", env.world.data / "train.lst", "--root", env.world.src)


def _case_top_k(env):
    return _predict(env, _val_images(env)[0], "--top-k", "0")


def _case_nothing_to_predict(env):
    return _predict(env)


def _case_predict_gpus(env):
    return _predict(env, _val_images(env)[0], "--gpus", "a")


def _case_eval_missing(env):
    return _predict(env, "--eval", env.tmp / "none.lst")


def _case_eval_malformed(env):
    (env.tmp / "bad.lst").write_text("0\tnot-a-label\tant/img_00.png\n")
    return _predict(env, "--eval", env.tmp / "bad.lst", "--root", env.world.src)


def _case_eval_labels(env):
    (env.tmp / "bad.lst").write_text("0\t7.000000\tant/img_00.png\n")
    return _predict(env, "--eval", env.tmp / "bad.lst", "--root", env.world.src)


def _case_other_manifest(env):
    other = env.copy(env.world.data, "other")
    raw = json.loads((other / "manifest.json").read_text())
    raw["fingerprint"] = "f" * 64
    (other / "manifest.json").write_text(json.dumps(raw))
    return _predict(env, _val_images(env)[0], "--manifest", other)


def _case_predict_huge(env):
    return _predict(env, huge_png(env.tmp / "huge.png"), *_val_images(env))


def _case_predict_low_memory(env):
    img = env.tmp / "photo.png"
    write_image(img, 5, 400, 500)
    low_memory(env.monkeypatch, 400 * 500 * 3)  # less than decoding it needs; the 40x40 ones still fit
    return _predict(env, img, *_val_images(env))


def _case_predict_undecodable(env):
    (env.tmp / "notes.jpg").write_text("not an image")
    return _predict(env, env.tmp / "notes.jpg", *_val_images(env))


def _case_predict_missing_image(env):
    return _predict(env, env.tmp / "missing.png", *_val_images(env))


def _then_other_image_predicted(env, out, err):
    assert out.startswith(f"{_val_images(env)[0]}: "), out


CASES = [
    # porting.data
    Case("data: --layout folders without --src", "data",
         lambda env: (["--layout", "folders", "--out", env.tmp / "out"], env.tmp / "out"),
         "--src is required for --layout folders"),
    Case("data: --src does not exist", "data", lambda env: _data(env, src=env.tmp / "none"), "does not exist"),
    Case("data: unknown --layout", "data",
         lambda env: (["--layout", "imagenet", "--out", env.tmp / "out"], env.tmp / "out"), "--layout must be one of folders, oxford17, oxford102, digits, got 'imagenet'"),
    Case("data: no class folders", "data", _case_no_class_folders, "has no class sub-folders"),
    Case("data: empty class folder", "data", _case_empty_class, "class 'emu' is empty"),
    Case("data: class whose files are all bad", "data", _case_all_bad, "class 'emu' has no usable images"),
    Case("data: class too small for the split", "data", _case_too_small, "class 'emu' has 1 image(s)"),
    Case("data: a single class", "data", _case_single_class, "found 1 class ('ant'), need at least 2"),
    Case("data: --val outside [0, 1)", "data", lambda env: _data(env, "--val", "1.2"), "must each be in [0, 1)"),
    Case("data: --val + --test >= 1", "data", lambda env: _data(env, "--val", "0.5", "--test", "0.5"), "val + test < 1"),
    Case("data: malformed --crop", "data", lambda env: _data(env, "--crop", "12by12"), "expected HEIGHTxWIDTH"),
    Case("data: --crop larger than the resized images", "data", lambda env: _data(env, "--crop", "40x40"),
         "larger than the resized images"),
    Case("data: --quality out of range", "data", lambda env: _data(env, "--encoding", "png", "--quality", "50"),
         "out of range for png"),
    Case("data: --official-split with folders", "data", lambda env: _data(env, "--official-split"),
         "only for --layout oxford102"),
    Case("data: oxford17 count not a multiple of 80", "data", _case_oxford17_count, "81 images cannot be labelled"),
    Case("data: oxford102 without imagelabels.mat", "data", _case_ox102_missing, "imagelabels.mat (not found)"),
    Case("data: oxford102 label count differs", "data", _case_ox102_count, "has 3 labels but"),
    Case("data: oxford102 .mat is garbage", "data", _case_ox102_corrupt, "not a readable .mat file"),
    Case("data: --out is a file", "data", _case_out_is_file, "exists and is not a directory"),
    Case("data: --out below a file", "data", _case_out_under_file, "is a file, not a folder"),
    Case("data: --out not writable (/proc)", "data", _case_out_proc, "cannot write in /proc"),
    Case("data: --out holds foreign files", "data", _case_out_foreign, "did not write (thesis.tex)"),
    Case("data: --out holds another data set", "data", _case_out_other_dataset, "holds a different data set"),
    Case("data: --out inside --src", "data", _case_out_inside_src, "is inside --src", then=_then_src_untouched),
    Case("data: changed split without --force", "data", _case_changed_split,
         "split with --val 0.2; this run asks for --val 0.25"),
    Case("data: re-run on a read-only finished data set", "data", _case_readonly_rerun, rc=0, errors=0,
         then=lambda env, out, err: out.startswith("up to date")),
    Case("data: changed run on a read-only data set", "data", _case_readonly_changed,
         "Read-only file system); choose a folder you can write to"),
    Case("data: image above OpenCV's pixel limit", "data", _case_huge_image, rc=0, errors=0, then=_then_huge_skipped),
    Case("data: disk full while packing", "data", _case_disk_full_packing,
         "failed (No space left on device); nothing was committed", then=_then_no_dataset),
    Case("data: disk full at the commit", "data", _case_disk_full_commit,
         "committing the data set", then=_then_no_dataset, unchanged=False),
    # porting.train
    Case("train: --data without a manifest", "train", _case_manifest_missing, "not found: run `python -m porting.data`"),
    Case("train: manifest is not JSON", "train", _case_manifest_json, "is not valid JSON"),
    Case("train: manifest lacks a field", "train", _case_manifest_field, "malformed field"),
    Case("train: --resume without a checkpoint", "train", _case_resume_nothing, "no complete epoch"),
    Case("train: --resume with a changed option", "train", _case_resume_conflict, "--lr 0.5 (checkpoint: 0.01)"),
    Case("train: --resume with --pretrained", "train", _case_resume_pretrained, "--pretrained starts a new run"),
    Case("train: --resume with other data", "train", _case_resume_other_data, "is not the data set this run was trained on"),
    Case("train: --model-dir holds a run", "train", _case_holds_run, "already holds a run"),
    Case("train: --symbol with Inception-ResNet-v2 options", "train", _case_symbol_options,
         "shape the hand-ported Inception-ResNet-v2 only"),
    Case("train: bad values", "train", _case_bad_values, "--epochs must be >= 1, got 0; --lr must be > 0"),
    Case("train: malformed --repeats", "train",
         lambda env: (env.train_argv(None, None, "--repeats", "tiny"), env.tmp / "run"), "argument --repeats"),
    Case("train: malformed --gpus", "train",
         lambda env: (env.train_argv(None, None, "--gpus", "a"), env.tmp / "run"), "--gpus expects comma-separated"),
    Case("train: dist kvstore without its environment", "train", _dist, "needs the parameter-server environment"),
    Case("train: --model-dir is a file", "train", _case_model_dir_file, "is a file; expected a folder"),
    Case("train: --model-dir below a file", "train", _case_model_dir_under_file, "is a file, not a folder"),
    Case("train: --model-dir not writable (/proc)", "train", _case_model_dir_proc, "cannot write in /proc"),
    Case("train: --model-dir used by another process", "train", _case_locked, "another training process is using",
         then=_then_release_lock),
    Case("train: .rec shorter than recorded", "train", _case_rec_truncated, "bytes, manifest says"),
    Case("train: .idx offsets damaged", "train", _case_idx_offsets, "is not at the start of a record"),
    Case("train: manifest without content hashes", "train", _case_no_hashes, rc=0, errors=0,
         then=_then_trained_with_warning),
    Case("train: validation split smaller than the batch", "train", _case_val_small, rc=0, errors=0,
         then=_then_val_evaluated),
    Case("train: training split smaller than the batch", "train", _case_train_small,
         "has 20 images, fewer than --batch-size 64: use --batch-size 20 or less"),
    Case("train: --symbol translated for another size", "train", _case_symbol_size,
         "was translated for 24x24 input, the data's input is 32x32"),
    Case("train: --symbol files missing", "train", _case_symbol_missing, "nothing-symbol.json not found"),
    Case("train: --pretrained files missing", "train", _case_pretrained_missing, "slim-0000.params not found"),
    Case("train: not enough memory", "train", _case_low_memory, "training needs about"),
    Case("train: not enough disk for a checkpoint", "train", _case_low_disk, "free; free some space or write elsewhere"),
    *[Case(f"train: disk full writing {name}", "train", _disk_full_at(name),
           "saving epoch 1 in" if name not in ("metrics.json", "metrics.csv", "curve.png") else
           "epoch 1 is saved", then=_then_epoch_not_claimed if name not in ("metrics.json", "metrics.csv", "curve.png")
           else _then_epoch_saved_metrics_rebuilt, unchanged=False)
      for name in ("model-symbol.json", "model-0001.params", "model-0001.states", "checkpoint.json", "metrics.json",
                   "metrics.csv", "curve.png")],
    # porting.predict
    Case("predict: --model that does not exist", "predict", _case_predict_missing_model,
         "is not a model directory written by porting.train"),
    Case("predict: converted model without preprocessing", "predict", _case_converted_bare,
         "missing: --size HxW; --preprocess inception"),
    Case("predict: converted model, --mean-rgb without --std-rgb", "predict", _case_converted_partial,
         "missing: --std-rgb R,G,B"),
    Case("predict: --preprocess inception with --resize", "predict", _case_converted_flags_clash,
         "--preprocess inception fixes the resize"),
    Case("predict: converted model at a size it does not take", "predict", _case_converted_wrong_size,
         "the symbol does not accept input (3, 8, 8)"),
    Case("predict: --labels count differs", "predict", _case_converted_labels, "lists 3 names but the model has 2"),
    Case("predict: preprocessing flags on a trained model", "predict", _case_flags_on_trained,
         "its preprocessing comes from its manifest copy; drop --size, --preprocess"),
    Case("predict: malformed --mean-rgb", "predict", _case_bad_mean, "--mean-rgb expects three numbers"),
    Case("predict: malformed --size", "predict", _case_bad_size, "--size expected N or HxW"),
    Case("predict: --epoch not complete", "predict", _case_epoch, "epoch 7 is not a complete checkpoint"),
    Case("predict: wrong prefix", "predict", _case_prefix, "holds the checkpoints of prefix 'model', not 'other'"),
    Case("predict: damaged params", "predict", _case_damaged_params, "differs from the params file"),
    Case("predict: --eval on training images", "predict", _case_train_images, "--allow-train-images"),
    Case("predict: --top-k 0", "predict", _case_top_k, "--top-k must be >= 1, got 0"),
    Case("predict: no images and no --eval", "predict", _case_nothing_to_predict, "give IMAGE files, --eval LIST"),
    Case("predict: malformed --gpus", "predict", _case_predict_gpus, "--gpus expects comma-separated"),
    Case("predict: --eval list missing", "predict", _case_eval_missing, "none.lst not found"),
    Case("predict: --eval line malformed", "predict", _case_eval_malformed, "expected 'index<TAB>label<TAB>path'"),
    Case("predict: --eval label outside the classes", "predict", _case_eval_labels, "outside the model's 2 classes"),
    Case("predict: --manifest of another data set", "predict", _case_other_manifest, "does not belong to model"),
    Case("predict: image above OpenCV's pixel limit", "predict", _case_predict_huge,
         "huge.png: cannot be decoded as an image (image of 100000x100000 pixels", then=_then_other_image_predicted),
    Case("predict: image too large for the memory", "predict", _case_predict_low_memory,
         "photo.png: cannot be decoded as an image (image of 400x500 pixels would need about",
         then=_then_other_image_predicted),
    Case("predict: undecodable image", "predict", _case_predict_undecodable, "notes.jpg: cannot be decoded",
         then=_then_other_image_predicted),
    Case("predict: image file missing", "predict", _case_predict_missing_image, "missing.png: cannot read it",
         then=_then_other_image_predicted),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, world, tmp_path, monkeypatch, capsys):
    env = Env(tmp_path, world, monkeypatch)
    argv, watched = case.setup(env)
    watched = Path(watched) if watched is not None else None
    before = snapshot(watched) if watched is not None else {}
    capsys.readouterr()
    try:
        rc = MAINS[case.command]([str(a) for a in argv] + ["--no-progress"])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if ERROR_LINE.match(line)]
    assert rc == case.rc, (rc, err[-3000:])
    assert len(lines) == case.errors, err[-3000:]
    if case.message:
        assert case.message in lines[0], lines[0]
    assert "Traceback" not in err and "Traceback" not in out
    if case.rc != 0 and case.then is not _then_other_image_predicted:
        assert out == "", out  # nothing on stdout (MXNet's own infer_shape lines included)
    if case.rc != 0 and case.unchanged and watched is not None:
        assert snapshot(watched) == before, "a refused run changed its output folder"
    if watched is not None and case.command == "train" and watched.is_dir():
        no_uncommitted_epoch(watched)
    if case.then is not None:
        case.then(env, out, err)


def test_the_suite_has_one_case_per_kind():
    assert len(CASES) >= 45 and len({c.id for c in CASES}) == len(CASES)


# -- native crashes and Ctrl-C: the process is the point ---------------------------------------


def _env(**extra) -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), PORTING_NO_PROGRESS="1", **extra)


def test_flipped_bytes_in_a_rec_are_refused_before_mxnet_reads_them(world, tmp_path):
    """Same size, different content: MXNet aborted in C++ (exit 134); now the content hash refuses it."""
    data = shutil.copytree(world.data, tmp_path / "data")
    with open(data / "train.rec", "r+b") as f:
        f.seek(f.seek(0, os.SEEK_END) // 2)
        chunk = bytearray(f.read(64))
        f.seek(-64, os.SEEK_CUR)
        f.write(bytes(b ^ 0xFF for b in chunk))
    proc = subprocess.run([sys.executable, "-m", "porting.train", "--data", str(data), "--model-dir",
                           str(tmp_path / "run"), *TRAIN_FAST], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and "train.rec does not match its recorded content hash" in lines[0], lines
    assert "re-run porting.data with the same arguments" in lines[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()


def _start(argv: list, pause_env: str, after: int = 1) -> subprocess.Popen:
    """Start a command that pauses (its test hook) after ``after`` steps; return once it has."""
    proc = subprocess.Popen([sys.executable, "-m", *map(str, argv)], cwd=REPO, env=_env(**{pause_env: str(after)}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stderr:
        seen.append(line)
        if "paused after" in line:
            return proc
        assert time.monotonic() < deadline, "no pause within 240 s"
    proc.kill()
    raise AssertionError(f"never paused: rc={proc.wait()} {''.join(seen)[-3000:]}")


def _interrupt(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def _one_interrupted_line(rc: int, err: str, hint: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert rc == 130, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("interrupted; nothing half-written; ") and hint in lines[0], err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_ctrl_c_while_packing(world, tmp_path):
    out = tmp_path / "out"
    proc = _start(["porting.data", "--layout", "folders", "--src", world.src, "--out", out, "--resize", "36",
                   "--crop", "32x32"], packing.PAUSE_ENV, after=5)
    rc, err = _interrupt(proc)
    _one_interrupted_line(rc, err, "re-run the same command")
    assert not out.exists()  # the run created it: no manifest, no .rec, no staging folder, no lock


def test_ctrl_c_during_an_epoch(world, tmp_path):
    run = tmp_path / "run"
    proc = _start(["porting.train", "--data", world.data, "--model-dir", run, *TRAIN_FAST, "--max-batches", "3"],
                  loop.PAUSE_ENV, after=2)
    rc, err = _interrupt(proc)
    _one_interrupted_line(rc, err, f"resume with: python -m porting.train --resume --model-dir {run}")
    assert not (run / checkpoint.CHECKPOINT_NAME).exists() and not list(run.glob("model-*"))
    no_uncommitted_epoch(run)


def test_ctrl_c_while_predicting(world, tmp_path):
    before = snapshot(world.model.parent)
    images = _val_images(Env(tmp_path, world, None), 3)
    proc = _start(["porting.predict", "--model", world.model, *images], prediction.PAUSE_ENV, after=1)
    rc, err = _interrupt(proc)
    _one_interrupted_line(rc, err, "run it again")
    assert snapshot(world.model.parent) == before


@pytest.mark.parametrize("command, argv", [
    ("data", lambda tmp: ["--layout", "folders", "--out", tmp / "out"]),
    ("train", lambda tmp: ["--data", tmp / "nothing", "--model-dir", tmp / "run"]),
    ("predict", lambda tmp: ["--model", tmp / "model", "--top-k", "0", "x.png"]),
])
def test_debug_shows_the_traceback(command, argv, tmp_path, capsys):
    assert MAINS[command]([str(a) for a in argv(tmp_path)] + ["--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
