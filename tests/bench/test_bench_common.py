"""bench/common.py and what every bench shares: a failed child's own error in one line, and
smoke or partial runs that never replace the committed full-run reports.

The GPU cases run on a machine without a GPU (this project's CPU-only MXNet build sees
none); they are skipped where MXNet sees one.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import common

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports" / "bench"


def _digests() -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(REPORTS.glob("*.json"))}


def _bench(script: str, *argv, tmp_path: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a bench with its temporary folder under ``tmp_path`` and the caller's TF/MXNet settings removed."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_", "MXNET_", "PORTING_"))}
    env.update(TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *argv], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


# ------------------------------------------------------------------ the child's error, one line

TRAIN_ERROR_TRACEBACK = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
Traceback (most recent call last):
  File "/repo/bench/mirror_memory.py", line 183, in <module>
    sys.exit(main())
             ^^^^^^
  File "/repo/porting/training/devices.py", line 47, in contexts
    raise TrainError(f"--gpus {gpus}: GPU {missing[0]} is not available")
porting.training.config.TrainError: --gpus 0: GPU 0 is not available; MXNet sees 0 GPU(s)
"""

MXNET_ERROR = """\
  File "/venv/mxnet/symbol/symbol.py", line 1944, in simple_bind
    raise RuntimeError(error_msg)
RuntimeError: simple_bind error. Arguments:
data: (4, 3, 107, 107)
softmax_label: (4,)
Traceback (most recent call last):
  File "../src/storage/storage.cc", line 116
MXNetError: Compile with USE_CUDA=1 to enable GPU usage
"""

CXX_ABORT = """\
[15:29:46] ../src/operator/nn/mkldnn/mkldnn_pooling.cc:58: MKLDNN Pooling: training with prop_kind is forward_scoring
terminate called after throwing an instance of 'dmlc::Error'
  what():  [10:01:02] ../src/io/iter_image_recordio_2.cc:130: Check failed: magic == kMagic: invalid RecordIO file
"""


@pytest.mark.parametrize("stderr, stdout, expected", [
    (TRAIN_ERROR_TRACEBACK, "", "TrainError: --gpus 0: GPU 0 is not available; MXNet sees 0 GPU(s)"),
    (MXNET_ERROR, "", "MXNetError: Compile with USE_CUDA=1 to enable GPU usage"),
    (CXX_ABORT, "", "terminate called after throwing an instance of 'dmlc::Error' what():  [10:01:02] "
                    "../src/io/iter_image_recordio_2.cc:130: Check failed: magic == kMagic: invalid RecordIO file"),
    ("progress 1/3\nerror: --size must be positive, got -3\n", "", "--size must be positive, got -3"),
    ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n", "half a result",
     "half a result"),
    ("", "", "no output"),
], ids=["python-exception", "mxnet-error", "cxx-abort", "error-line", "only-noise", "nothing"])
def test_child_error_is_the_childs_own_last_word(stderr, stdout, expected):
    assert common.child_error(stderr, stdout) == expected


def test_child_failure_names_the_exit_or_the_signal():
    assert common.child_failure("mxnet quick", 1, TRAIN_ERROR_TRACEBACK) == (
        "mxnet quick failed (exit 1): TrainError: --gpus 0: GPU 0 is not available; MXNet sees 0 GPU(s)")
    assert common.child_failure("tf", -signal.SIGKILL, "") == "tf was killed by SIGKILL (out of memory?): no output"
    assert common.child_failure("tf", -signal.SIGABRT, CXX_ABORT).startswith(
        "tf was killed by SIGABRT: terminate called after throwing")


# ------------------------------------------------------------------ where reports go

def test_report_path_keeps_the_committed_reports_for_full_runs(tmp_path):
    assert common.report_path(None, "train_throughput", smoke=False) == REPORTS / "train_throughput.json"
    smoke = common.report_path(None, "train_throughput", smoke=True)
    assert smoke.parent == common.SMOKE_REPORTS and REPORTS not in smoke.parents
    assert common.report_path(str(tmp_path / "x.json"), "train_throughput", smoke=True) == tmp_path / "x.json"
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(common.UsageError, match="is a file, not a folder"):
        common.report_path(str(blocker / "x.json"), "train_throughput", smoke=False)
    with pytest.raises(common.UsageError, match="is a folder; expected a file path"):
        common.report_path(str(tmp_path), "train_throughput", smoke=False)


@pytest.mark.parametrize("script, argv", [
    ("train_throughput.py", ["--quick"]),
    ("layer_times.py", ["--quick"]),
    ("mirror_memory.py", ["--quick"]),
    ("compare_cost.py", []),
    ("numeric_cost.py", []),
    ("autoport_zoo.py", ["--nets", "vgg_a"]),
])
def test_a_bad_out_is_refused_before_any_work(script, argv, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    done = _bench(script, *argv, "--out", str(blocker / "report.json"), tmp_path=tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: --out {blocker / 'report.json'}: {blocker} is a file, not a "
                                        "folder; expected a path in a folder"]
    assert done.stdout == ""


def test_a_partial_zoo_run_writes_to_the_temporary_folder(tmp_path):
    before = _digests()
    done = _bench("autoport_zoo.py", "--nets", "vgg_a", "--test-size", "--timeout", "0.01", tmp_path=tmp_path)
    assert done.returncode == 1  # the network timed out: not passed
    written = tmp_path / "porting-bench-quick" / "autoport_zoo.json"
    assert done.stdout.splitlines()[-1] == f"wrote {written}"
    assert [row["status"] for row in json.loads(written.read_text())["rows"]] == ["timeout"]
    assert _digests() == before


@pytest.mark.parametrize("script", ["compare_cost.py", "numeric_cost.py"])
def test_a_failing_child_gives_its_own_error_in_one_line(script, tmp_path):
    before = _digests()
    done = _bench(script, "--model", "no_such_model", tmp_path=tmp_path)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: benchmark child `python ") and "failed (exit " in line
    assert line.endswith("UsageError: unknown model 'no_such_model'. Available: inception_resnet_v2, "
                         "inception_resnet_v2_align, inception_resnet_v2_os8, inception_resnet_v2_reduced")
    assert _digests() == before and not (tmp_path / "porting-bench-quick").exists()


# ------------------------------------------------------------------ a GPU command without a GPU

@pytest.fixture(scope="module")
def no_gpu():
    from porting import compat

    mx = compat.import_mx()
    if mx.context.num_gpus():
        pytest.skip("MXNet sees a GPU here: the no-GPU error cannot happen")


@pytest.mark.parametrize("script, argv, expected", [
    ("mirror_memory.py", ["--quick", "--gpus", "0"],
     "error: the MXNET_BACKWARD_DO_MIRROR=0 child failed (exit 1): TrainError: --gpus 0: GPU 0 is not available; "
     "MXNet sees 0 GPU(s) (this is a CPU-only MXNet build; GPU builds are the mxnet-cuXXX wheels)"),
    ("train_throughput.py", ["--quick", "--gpus", "0", "--frameworks", "mxnet"],
     "error: mxnet quick-reduced-107 failed (exit 1): TrainError: --gpus 0: GPU 0 is not available; MXNet sees 0 "
     "GPU(s) (this is a CPU-only MXNet build; GPU builds are the mxnet-cuXXX wheels)"),
    ("train_throughput.py", ["--quick", "--gpus", "0", "--frameworks", "tensorflow"],
     "error: tensorflow quick-reduced-107 failed (exit 1): RuntimeError: --gpus 0: GPU 0 is not available; "
     "TensorFlow sees 0 GPU(s) (no CUDA driver, or a CPU-only TensorFlow)"),
], ids=["mirror-mxnet", "throughput-mxnet", "throughput-tensorflow"])
def test_a_gpu_command_without_a_gpu_says_why(no_gpu, script, argv, expected, tmp_path):
    before = _digests()
    done = _bench(script, *argv, tmp_path=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [expected]
    assert _digests() == before and not (tmp_path / "porting-bench-quick").exists()
