"""The model directory: checkpoints, parameter files, the data copy and the directory's lock.

Checkpoints are MXNet's ``PREFIX-symbol.json`` / ``PREFIX-NNNN.params`` (loadable with
``mx.model.load_checkpoint``) plus ``PREFIX-NNNN.states`` (``Module.save_optimizer_states``),
each written to a temporary name and renamed (``porting.util``); ``checkpoint.json`` is
written last and names the last complete epoch with the SHA-256 of its files.
``--resume`` reads only what ``checkpoint.json`` names, so a kill at any moment loses at
most the epoch in progress. ``MODEL_DIR/data`` holds a copy of the data set's manifest,
mean image and contents list: serving (``porting.serving.model_loading``) reads its
preprocessing only from there, and reads the checkpoint through this module's format
constants and readers, never through the training loop.

Fine-tuning (:func:`load_pretrained`) loads a converted checkpoint into a network and
leaves out the head parameters whose shape changed with the number of classes.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np

from porting import compat, util
from porting.data.manifest import Manifest, read_format_json, sha256_file
from porting.training.config import TrainError

mx = compat.import_mx()

from mx_impl import inception_resnet_v2 as irv2  # noqa: E402
from porting.training.symbol_heads import LABEL_NAME, infer_shape  # noqa: E402

FORMAT = "porting.train/1"
CHECKPOINT_NAME = "checkpoint.json"
LOCK_NAME = ".lock"
#: Sub-directory of the model directory that holds the copy of the data manifest.
DATA_COPY_DIR = "data"
DATA_COPY_FILES = ("manifest.json", "mean.bin", "contents.tsv")
#: Parameters of the hand port replaced (not loaded) when fine-tuning for another number of classes.
HEAD_PREFIXES = (f"{irv2.SCOPE}/Logits/Logits_", f"{irv2.SCOPE}/AuxLogits/")


def lock_model_dir(model_dir: Path) -> int:
    """An exclusive lock on the model directory for this process (the kernel drops it on any exit).

    Returns the descriptor that holds it (close it to release).

    Raises:
        TrainError: another process holds it.
    """
    try:
        return util.acquire_lock(model_dir / LOCK_NAME)
    except util.LockBusy:
        raise TrainError(f"another training process is using {model_dir}") from None


# ------------------------------------------------------------------ checkpoints

def checkpoint_paths(model_dir: Path, prefix: str, epoch: int) -> dict[str, Path]:
    """The symbol, params and optimizer-states files of ``epoch``."""
    return {
        "symbol": model_dir / f"{prefix}-symbol.json",
        "params": model_dir / f"{prefix}-{epoch:04d}.params",
        "states": model_dir / f"{prefix}-{epoch:04d}.states",
    }


def read_checkpoint(model_dir: str | Path, verify: bool = True) -> dict:
    """``checkpoint.json`` of a model directory; ``verify`` checks its files' SHA-256.

    Raises:
        TrainError: missing, malformed, or a file it names is missing or changed.
    """
    model_dir = Path(model_dir)
    path = model_dir / CHECKPOINT_NAME
    record = read_format_json(path, FORMAT, TrainError, f"no complete epoch in {model_dir} to resume from")
    epoch = int(record["epoch"])
    files = record["epochs"][str(epoch)]
    for kind, p in checkpoint_paths(model_dir, record["prefix"], epoch).items() if verify else ():
        if not p.is_file():
            raise TrainError(f"{path} names epoch {epoch} but its {kind} file {p} is missing")
        if sha256_file(p) != files[kind]:
            raise TrainError(f"{p} does not match the SHA-256 {path} recorded for epoch {epoch}")
    return record


def saved_config(model_dir: str | Path) -> dict:
    """The config of the run in ``model_dir`` (rank 0's, or any worker's ``rank<r>`` copy).

    Raises:
        TrainError: no checkpoint there.
    """
    model_dir = Path(model_dir)
    candidates = [model_dir] + sorted(model_dir.glob("rank*"))
    for d in candidates:
        if (d / CHECKPOINT_NAME).is_file():
            return read_checkpoint(d, verify=False)["config"]
    raise TrainError(f"{model_dir / CHECKPOINT_NAME} not found: no complete epoch in {model_dir} to resume from")


def save_checkpoint(mod, model_dir: Path, prefix: str, epoch: int, record: dict, keep_last: int = 0,
                    symbol=None) -> dict:
    """Write symbol, params and optimizer states of ``epoch``, then ``checkpoint.json`` naming it.

    ``symbol``: the network to save when the module trains a rewritten form of it
    (``network.scale_residuals_in_weights``; the same parameters); default ``mod.symbol``.

    The params file is ``mx.model.save_checkpoint``'s format (``arg:``/``aux:`` keys).
    ``checkpoint.json`` is the commit: written last, atomically. If anything fails before
    it is written (a full disk, Ctrl-C), this epoch's params and states files are removed
    and ``checkpoint.json`` still names the previous epoch, so no file claims work that was
    not saved and no orphan params file remains. With ``keep_last`` > 0, older epochs are
    dropped from ``checkpoint.json`` first and their files deleted after, so the record
    never names a deleted file.
    """
    paths = checkpoint_paths(model_dir, prefix, epoch)
    record = dict(record)
    try:
        util.atomic_write_text(paths["symbol"], (symbol if symbol is not None else mod.symbol).tojson())
        arg, aux = mod.get_params()
        blob = {f"arg:{k}": v for k, v in arg.items()} | {f"aux:{k}": v for k, v in aux.items()}
        util.atomic_write_via(paths["params"], lambda tmp: mx.nd.save(tmp, blob))
        util.atomic_write_via(paths["states"], mod.save_optimizer_states)
        record["epochs"] = dict(record.get("epochs", {}))
        record["epochs"][str(epoch)] = {kind: sha256_file(p) for kind, p in paths.items()}
        record["epoch"] = epoch
        dropped = sorted(int(e) for e in record["epochs"])[:-keep_last] if keep_last else []
        for e in dropped:
            del record["epochs"][str(e)]
        util.atomic_write_text(model_dir / CHECKPOINT_NAME, json.dumps(record, indent=2) + "\n")
    except BaseException:
        if not _committed(model_dir, epoch):
            for kind in ("params", "states"):
                paths[kind].unlink(missing_ok=True)
        raise
    for e in dropped:
        for kind, p in checkpoint_paths(model_dir, prefix, e).items():
            if kind != "symbol":
                p.unlink(missing_ok=True)
    return record


def _committed(model_dir: Path, epoch: int) -> bool:
    """Whether ``checkpoint.json`` on disk names ``epoch`` (then its files must stay)."""
    try:
        return str(epoch) in json.loads((model_dir / CHECKPOINT_NAME).read_text("utf-8")).get("epochs", {})
    except (OSError, ValueError, AttributeError):
        return False


def check_symbol_unchanged(sym, prefix: str, model_dir: Path, record: dict) -> None:
    """On resume: ``--symbol`` still gives the training symbol the checkpoint saved.

    Raises:
        TrainError: ``PREFIX-symbol.json`` changed since the run started.
    """
    saved = record["epochs"][str(record["epoch"])]["symbol"]
    if hashlib.sha256(sym.tojson().encode("utf-8")).hexdigest() != saved:
        raise TrainError(f"--symbol {prefix}-symbol.json no longer gives the network this run trains "
                         f"({model_dir / record['prefix']}-symbol.json): restore it (autoport writes the same "
                         f"file again from the same network and options) or start a new run in another --model-dir")


def remap_states(blob: bytes, old_devices: int, new_devices: int) -> bytes:
    """Optimizer states saved with ``old_devices`` contexts, re-keyed for ``new_devices``.

    Module keys an updater state by ``param_index * num_devices + device``; the states of
    all devices are equal (same gradients, same updates), so device 0's are copied.
    """
    if old_devices == new_devices:
        return blob
    states = pickle.loads(blob)
    if isinstance(states, tuple) and len(states) == 2:  # (states, optimizer) dumps
        states = states[0]
    remapped = {}
    for key, value in states.items():
        param, device = divmod(int(key), old_devices)
        if device == 0:
            for k in range(new_devices):
                remapped[param * new_devices + k] = value
    return pickle.dumps(remapped)


# ------------------------------------------------------------------ parameter files

def load_params_file(path: Path) -> tuple[dict, dict]:
    """``(arg_params, aux_params)`` of an MXNet ``.params`` file."""
    try:
        loaded = mx.nd.load(str(path))
    except mx.base.MXNetError as e:
        raise TrainError(f"{path} is not an MXNet params file: {str(e).strip().splitlines()[0]}") from e
    arg, aux = {}, {}
    for key, value in loaded.items():
        kind, _, name = key.partition(":")
        if kind == "arg":
            arg[name] = value
        elif kind == "aux":
            aux[name] = value
        else:
            raise TrainError(f"{path}: key {key!r} is neither 'arg:' nor 'aux:' (not a Module checkpoint)")
    return arg, aux


def param_shapes(sym, data_shape: tuple[int, ...], batch: int = 1) -> tuple[dict, dict]:
    """Shapes of the symbol's parameters (inputs ``data``/``softmax_label`` excluded)."""
    args = sym.list_arguments()
    shapes = {"data": (batch, *data_shape)}
    if LABEL_NAME in args:
        shapes[LABEL_NAME] = (batch,)
    arg_shapes, _, aux_shapes = infer_shape(sym, **shapes)
    arg = {n: tuple(s) for n, s in zip(args, arg_shapes) if n not in ("data", LABEL_NAME)}
    aux = {n: tuple(s) for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    return arg, aux


def fit_report(expected: dict, got: dict) -> tuple[list[str], list[str], list[str]]:
    """``(missing, unexpected, wrong shape)`` descriptions of ``got`` against ``expected`` shapes."""
    missing = sorted(n for n in expected if n not in got)
    unexpected = sorted(n for n in got if n not in expected)
    wrong = sorted(f"{n} (file {tuple(got[n].shape)}, network {expected[n]})"
                   for n in expected if n in got and tuple(got[n].shape) != expected[n])
    return missing, unexpected, wrong


def fit_problems(expected: tuple[dict, dict], got: tuple[dict, dict], noun: str = "",
                 unexpected: bool = True) -> list[str]:
    """One phrase per misfit of ``got`` ``(arg, aux)`` params against ``expected`` ``(arg, aux)`` shapes.

    ``missing arg<noun>: ...``, ``unexpected arg<noun>: ...`` (when ``unexpected``) and
    ``wrong shape: ...``, for the arg then the aux parameters; empty when everything fits.
    """
    problems = []
    for kind, want, have in (("arg", expected[0], got[0]), ("aux", expected[1], got[1])):
        missing, extra, wrong = fit_report(want, have)
        if missing:
            problems.append(f"missing {kind}{noun}: {util.short_list(missing)}")
        if extra and unexpected:
            problems.append(f"unexpected {kind}{noun}: {util.short_list(extra)}")
        if wrong:
            problems.append(f"wrong shape: {util.short_list(wrong)}")
    return problems


def params_digest(arg: dict, aux: dict) -> str:
    """SHA-256 over every parameter (name, shape, float32 bytes), for comparing models."""
    h = hashlib.sha256()
    for kind, params in (("arg", arg), ("aux", aux)):
        for name in sorted(params):
            value = params[name].asnumpy().astype(np.float32)
            h.update(f"{kind}:{name}:{value.shape}\n".encode())
            h.update(value.tobytes())
    return h.hexdigest()


def load_pretrained(sym, data_shape, prefix: str, epoch: int = 0, *, head=HEAD_PREFIXES,
                    option: str = "--pretrained") -> tuple[dict, dict, list[str]]:
    """Parameters of a converted slim checkpoint for ``sym``, with a new head where it differs.

    Head parameters (names starting with one of ``head``: by default the logits, and the
    AuxLogits branch whose last kernel depends on the input size) whose shape differs, or
    that the file lacks, are left out so they are initialised fresh; everything else must
    fit. ``option`` names the command-line option in messages.

    Returns:
        ``(arg_params, aux_params, reinitialised names)``.

    Raises:
        TrainError: the file is missing, or a body parameter is missing or has another shape.
    """
    path = Path(f"{prefix}-{epoch:04d}.params")
    if not path.is_file():
        tool = "porting.autoport" if option == "--symbol" else "porting.convert"
        raise TrainError(f"{option} {prefix}: {path} not found (write it with `python -m {tool}`)")
    arg, aux = load_params_file(path)
    want_arg, want_aux = param_shapes(sym, data_shape)
    fresh = []
    for want, have in ((want_arg, arg), (want_aux, aux)):
        for name, shape in want.items():
            if name.startswith(tuple(head)) and (name not in have or tuple(have[name].shape) != shape):
                have.pop(name, None)
                fresh.append(name)
    body = tuple({n: s for n, s in want.items() if n not in fresh} for want in (want_arg, want_aux))
    problems = fit_problems(body, (arg, aux), " parameters", unexpected=False)
    if problems:
        raise TrainError(f"{option} {path} does not fit the network: " + "; ".join(problems))
    arg = {n: v for n, v in arg.items() if n in want_arg}
    aux = {n: v for n, v in aux.items() if n in want_aux}
    return arg, aux, sorted(fresh)


# ------------------------------------------------------------------ data copy

def copy_data_manifest(manifest: Manifest, model_dir: Path) -> str:
    """Copy ``manifest.json``, the mean image and ``contents.tsv`` into ``MODEL_DIR/data``.

    Prediction reads preprocessing only from this copy. Returns the manifest's SHA-256.
    """
    dest = model_dir / DATA_COPY_DIR
    dest.mkdir(parents=True, exist_ok=True)
    for name in DATA_COPY_FILES:
        src = manifest.root / name
        if src.is_file():
            util.atomic_write_bytes(dest / name, src.read_bytes())
    return sha256_file(dest / "manifest.json")


def check_data_copy(manifest: Manifest, model_dir: Path, recorded_sha: str) -> None:
    """On resume: the data given is the data the run started with.

    Raises:
        TrainError: naming both manifests.
    """
    copy = model_dir / DATA_COPY_DIR / "manifest.json"
    if not copy.is_file() or sha256_file(copy) != recorded_sha:
        raise TrainError(f"{copy} is missing or differs from the manifest {CHECKPOINT_NAME} recorded")
    if sha256_file(manifest.path) != recorded_sha:
        raise TrainError(f"--data {manifest.path} is not the data set this run was trained on "
                         f"(its manifest differs from {copy}); resume with the original --data")

