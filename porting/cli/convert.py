"""``python -m porting.convert``: TF checkpoint -> MXNet checkpoint, and back.

TF -> MXNet::

    python -m porting.convert --model inception_resnet_v2 --tf-checkpoint model.ckpt --out irv2
    # writes irv2-symbol.json and irv2-0000.params, loadable with
    # mx.model.load_checkpoint('irv2', 0) or mx.mod.Module.load('irv2', 0)

With ``--onnx FILE`` the converted MXNet model is also exported to ONNX and proven: the file
runs in onnxruntime on one seeded input and every output (logits, predictions, aux logits) is
compared with MXNet's and with TF's on the checkpoint's weights; the file is written only
when all are within tolerance (else exit 1, the table says which)::

    python -m porting.convert --model inception_resnet_v2 --tf-checkpoint model.ckpt --out irv2 \\
        --onnx irv2.onnx

MXNet -> TF (a model fine-tuned in MXNet going back)::

    python -m porting.convert --model inception_resnet_v2 --mx-checkpoint irv2 --epoch 0 \\
        --out-tf-checkpoint back/model.ckpt

Both directions use the verifier's layer pairing (``porting.verifier.conversion``), so ports with
automatic MXNet names convert too (``--tf file.py:fn --mx file.py:fn``). Every MXNet
parameter without a TF value, every TF variable nothing takes and every shape mismatch
is listed by name and fails the conversion (exit 1) unless allowed:
``--allow-missing 'AuxLogits/*'`` (MXNet parameters that may stay unset),
``--allow-unexpected PATTERN`` (TF variables that may go unused). Exit 2: bad usage.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from porting import compat  # noqa: F401  (shims before any framework import)
from porting import progress, util
from porting.cli import common
from porting.frameworks.errors import BuilderError, SymbolError
from porting.frameworks.models import UsageError, available
from porting.verifier import arguments
from porting.verifier.conversion import convert_tf_to_mx, input_files, mx_to_tf, output_files

#: The steps of ``--onnx`` after the conversion, as its progress bar names them.
ONNX_STEPS = ["export ONNX", "onnxruntime", "MXNet", "TF", "compare"]

#: Bad input besides ``UsageError``: a builder that raised or broke its contract, a symbol
#: whose shapes do not infer.
INPUT_ERRORS = (BuilderError, SymbolError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m porting.convert",
        description="Convert weights between a TF checkpoint and an MXNet checkpoint, through the verified "
                    "layer pairing.")
    parser.add_argument("--model", help=f"registered pair (default inception_resnet_v2): {available()}")
    parser.add_argument("--tf", help="TF builder path/to/file.py:function (instead of --model)")
    parser.add_argument("--mx", help="MX builder path/to/file.py:function (instead of --model; TF -> MXNet only)")
    parser.add_argument("--size", help="input size N or HxW the pads are derived for (default: the model's)")
    parser.add_argument("--classes", type=int, help="number of classes (default: the model's)")
    parser.add_argument("--tf-checkpoint", metavar="PATH", help="TF -> MXNet: the TF checkpoint (prefix or directory)")
    parser.add_argument("--out", metavar="PREFIX", help="TF -> MXNet: write PREFIX-symbol.json and PREFIX-EPOCH.params")
    parser.add_argument("--mx-checkpoint", metavar="PREFIX", help="MXNet -> TF: PREFIX-symbol.json + PREFIX-EPOCH.params")
    parser.add_argument("--out-tf-checkpoint", metavar="PATH", help="MXNet -> TF: the TF checkpoint prefix to write")
    parser.add_argument("--onnx", metavar="FILE",
                        help="TF -> MXNet: also export the MXNet model to this ONNX file, proven in onnxruntime "
                             "against MXNet and TF (written only when every output agrees)")
    parser.add_argument("--epoch", type=int, default=0, help="MXNet checkpoint epoch (default 0)")
    parser.add_argument("--allow-missing", action="append", default=[], metavar="PATTERN",
                        help="parameters that may stay unset (repeatable; e.g. 'AuxLogits/*')")
    parser.add_argument("--allow-unexpected", action="append", default=[], metavar="PATTERN",
                        help="values that may go unused (repeatable)")
    common.add_common_arguments(parser)
    return parser


def _checkpoint_bytes(prefix: str) -> int:
    """Bytes of a TF checkpoint's data files: about what the converted parameters take."""
    path = Path(prefix)
    if path.is_dir():
        return sum(item.stat().st_size for item in path.glob("*.data-*"))
    return sum(item.stat().st_size for item in path.parent.glob(f"{path.name}.data-*"))


def _validate(args) -> bool:
    """Every argument check that needs no framework; returns the direction (True: TF -> MXNet)."""
    forward = bool(args.tf_checkpoint or args.out)
    backward = bool(args.mx_checkpoint or args.out_tf_checkpoint)
    if forward == backward:
        raise UsageError("give either --tf-checkpoint PATH --out PREFIX (TF -> MXNet) or "
                         "--mx-checkpoint PREFIX --out-tf-checkpoint PATH (MXNet -> TF)")
    if forward and not (args.tf_checkpoint and args.out):
        raise UsageError("TF -> MXNet needs both --tf-checkpoint PATH and --out PREFIX")
    if backward and not (args.mx_checkpoint and args.out_tf_checkpoint):
        raise UsageError("MXNet -> TF needs both --mx-checkpoint PREFIX and --out-tf-checkpoint PATH")
    if args.model and (args.tf or args.mx):
        raise UsageError("give either --model or --tf/--mx builders, not both")
    if (args.tf or args.mx) and not (args.tf and (args.mx or backward)):
        raise UsageError("custom builders need --tf and --mx (TF -> MXNet) or --tf (MXNet -> TF)")
    arguments.builder(args.tf, "tf")
    arguments.builder(args.mx, "mx")
    arguments.classes(args.classes)
    if args.epoch < 0:
        raise UsageError(f"--epoch must be non-negative, got {args.epoch}")
    if args.epoch > 9999:
        raise UsageError(f"--epoch must be at most 9999 (MXNet names files PREFIX-NNNN.params), got {args.epoch}")
    if args.model:
        arguments.sides(args.model, None, None)
    if args.size is not None:
        arguments.input_fits(1, arguments.size(args.size))
    if args.onnx and not forward:
        raise UsageError("--onnx exports the model a TF -> MXNet conversion writes; give it with "
                         "--tf-checkpoint PATH --out PREFIX")
    if forward:
        arguments.checkpoint(args.tf_checkpoint, "--tf-checkpoint")
        symbol_file, params_file = output_files(args.out, args.epoch)
        util.check_output_file(symbol_file, "--out")
        util.check_output_file(params_file, "--out", need_bytes=_checkpoint_bytes(args.tf_checkpoint))
        if args.onnx:
            from porting.serving import onnx_export

            util.check_output_file(args.onnx, "--onnx", need_bytes=_checkpoint_bytes(args.tf_checkpoint))
            onnx_export.import_onnx()  # the pinned release, checked before any work
            onnx_export.import_onnxruntime()
    else:
        for path in input_files(args.mx_checkpoint, args.epoch):
            if not path.is_file():
                raise UsageError(f"--mx-checkpoint: MXNet checkpoint file {path} not found (expected "
                                 f"PREFIX-symbol.json and PREFIX-{args.epoch:04d}.params)")
        params_bytes = input_files(args.mx_checkpoint, args.epoch)[1].stat().st_size
        util.check_output_file(f"{args.out_tf_checkpoint}.index", "--out-tf-checkpoint", need_bytes=params_bytes)
    return forward


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args(_parser(), argv)
    if args is None:
        return util.EXIT_USAGE
    return common.run(lambda: _main(args), args, errors=INPUT_ERRORS,
                      interrupted="run the same command again")


def _main(args) -> int:
    from porting.verifier.weights import WeightTransferError

    forward = _validate(args)
    common_args = dict(model=args.model, tf=args.tf, size=args.size, classes=args.classes,
                       allow_missing=args.allow_missing, allow_unexpected=args.allow_unexpected)
    try:
        if forward:
            conversion = convert_tf_to_mx(args.tf_checkpoint, args.out, mx=args.mx, epoch=args.epoch, **common_args)
            print(conversion.report.text())
            print(f"wrote {args.out}-symbol.json and {args.out}-{args.epoch:04d}.params")
            if args.onnx:
                proof = export_and_prove(conversion, args.out, args.epoch, args.onnx)
                print(proof.text())
                if not proof:
                    common.error(f"the ONNX export does not compute what MXNet and TF compute (table above); "
                                 f"{args.onnx} was not written")
                    return util.EXIT_FAILED
                print(f"wrote {args.onnx}")
        else:
            written, report = mx_to_tf(args.mx_checkpoint, args.out_tf_checkpoint, epoch=args.epoch, **common_args)
            print(report.text())
            print(f"wrote TF checkpoint {written} (.index, .data-*)")
    except FileNotFoundError as error:  # a checkpoint that went away or cannot be read: its path is in the text
        raise UsageError(str(error)) from error
    except WeightTransferError as error:  # the conversion found problems: exit 1, as the README says
        if error.report is None:
            common.error(str(error))
        else:  # the list on stdout, like compare's report; one line on stderr
            print(error.report.text())
            count = len(error.report.problems)
            common.error(f"{count} parameter problem{'s' if count != 1 else ''}, listed above; nothing was "
                         "written (allow the ones that may stay with --allow-missing / --allow-unexpected PATTERN)")
        return util.EXIT_FAILED
    return util.EXIT_OK


class _NotProven(Exception):
    """The exported file disagrees with MXNet or TF: it must not be published."""

    def __init__(self, proof):
        super().__init__(proof.text())
        self.proof = proof


def export_and_prove(conversion, prefix: str, epoch: int, path, seed: int = 0):
    """Export the MXNet checkpoint ``prefix``/``epoch`` to ONNX at ``path`` and prove it.

    The file runs in onnxruntime on one seeded input; each output is compared with MXNet's
    (the checkpoint read back) and with TF's (the conversion's graph and checkpoint). The
    file appears at ``path`` only when every output is within tolerance.

    Returns:
        the ``porting.verifier.conversion.ExportProof`` (falsy: nothing was written).
    """
    from porting.core import layouts
    from porting.serving import onnx_export
    from porting.verifier.conversion import prove_export
    from porting.verifier.parity.numeric import seeded_input

    mx = compat.import_mx()
    symbol, arg_params, aux_params = mx.model.load_checkpoint(str(prefix), epoch)
    arg_params = {name: value.asnumpy() for name, value in arg_params.items()}  # once, not in every step
    aux_params = {name: value.asnumpy() for name, value in aux_params.items()}
    images = seeded_input(conversion.tf_graph.images.shape.as_list(), seed=seed)
    data = layouts.nhwc_to_nchw(images)
    _, pinned = onnx_export.export_params(symbol, arg_params, aux_params)
    notes = [f"{len(pinned)} BatchNorm gamma{'s' if len(pinned) != 1 else ''} stored != 1 under fix_gamma=True "
             "exported as 1, as MXNet computes them"] if pinned else []
    proofs = []

    def write(staged: str) -> None:
        with progress.steps(ONNX_STEPS, desc="ONNX") as step:
            step("export ONNX")
            onnx_export.export_onnx(symbol, arg_params, aux_params, data.shape, staged)
            step("onnxruntime")
            session = onnx_export.OnnxSession(staged)
            exported = session.run(data)
            step("MXNet")
            mx_values = onnx_export.mx_outputs(symbol, arg_params, aux_params, data)
            step("TF")
            tf_values, note = conversion.tf_outputs(images, symbol.list_outputs())
            step("compare")
            tf_values = {onnx_export.onnx_output_name(name): value for name, value in tf_values.items()}
            runtime_notes = [f"onnxruntime {onnx_export.installed_onnxruntime()} on {', '.join(session.providers)}"]
            proof = prove_export("onnxruntime", path, exported, mx_values, tf_values,
                                 notes=notes + runtime_notes + ([note] if note else []))
        proofs.append(proof)
        if not proof:
            raise _NotProven(proof)

    try:
        util.atomic_write_via(path, write)
    except _NotProven as failed:
        return failed.proof
    return proofs[0]
