"""Tests of the bench/ scripts: their arguments, structure and smoke runs, never their timings."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_bench(name: str):
    """``bench/<name>.py`` as a module named ``bench_<name>`` (the scripts run as files, not as a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_bench_script(name: str, *argv: str, timeout: float = 600, env: dict | None = None):
    """``python bench/<name>.py ARGV`` in a fresh interpreter at the repository root (a ``CompletedProcess``)."""
    return subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py"), *argv], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)
