#!/usr/bin/env python3
"""Guest instructions per inference of the model checks, under qemu-aarch64.

Emulated wall time says nothing about ARM speed; the number of executed
aarch64 instructions is repeatable and does. Each check runs through
test_models twice under `qemu-aarch64 -plugin libinsn_count.so` (the dynamic
qemu-user; the static build cannot load plugins), with 1 and 1 + R
inferences; (count(1 + R) - count(1)) / R is the cost of one inference with
model loading, packing and planning excluded.

    python tools/aarch64/count_instructions.py BUILD_DIR CHECK_DIR [--only NAME] [--isa ISA]

BUILD_DIR is an aarch64 build (cmake/toolchains/aarch64-linux-gnu.cmake);
CHECK_DIR holds tools/make_model_checks.py output.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSROOT = "/usr/aarch64-linux-gnu"


def build_plugin(out_dir: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no host C compiler for the qemu plugin")
    plugin = out_dir / "libinsn_count.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(plugin), str(HERE / "insn_count_plugin.c")],
                   check=True)
    return plugin


def count(qemu: str, plugin: Path, binary: Path, check_dir: Path, args: list[str]) -> int:
    env = dict(os.environ, SPARSEDGE_MODEL_CHECK_DIR=str(check_dir))
    proc = subprocess.run([qemu, "-L", SYSROOT, "-plugin", str(plugin), str(binary), *args],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{binary.name} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    match = re.search(r"guest_instructions: (\d+)", proc.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in qemu's output:\n{proc.stderr}")
    return int(match.group(1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("check_dir", type=Path)
    parser.add_argument("--only", action="append", help="check name (repeatable); default: all")
    parser.add_argument("--isa", default="", help="force a kernel ISA (e.g. scalar)")
    parser.add_argument("--extra-runs", type=int, default=1, help="R: inferences added to the second run")
    args = parser.parse_args(argv)

    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        print("qemu-aarch64 (Debian qemu-user, with plugin support) not found", file=sys.stderr)
        return 2
    binary = args.build_dir / "tests" / "cpp" / "test_models"
    names = args.only or [line.split()[0] for line in (args.check_dir / "checks.txt").read_text().splitlines()
                          if line.strip() and not line.startswith("#")]
    extra = ["--isa", args.isa] if args.isa else []
    with tempfile.TemporaryDirectory() as tmp:
        plugin = build_plugin(Path(tmp))
        print(f"{'check':<24} {'isa':<7} {'instructions/inference':>24} {'load+1 run':>14}")
        for name in names:
            base = count(qemu, plugin, binary, args.check_dir, ["--only", name, "--runs", "1", *extra])
            more = count(qemu, plugin, binary, args.check_dir,
                         ["--only", name, "--runs", str(1 + args.extra_runs), *extra])
            per_run = (more - base) / args.extra_runs
            print(f"{name:<24} {args.isa or 'default':<7} {per_run:>24,.0f} {base:>14,}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
