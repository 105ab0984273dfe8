"""Fault injection: kill gampen with SIGKILL at random moments, rerun, compare.

    python benchmarks/faults.py [--trials 20] [--seed 0] [--only simulate,train,predict,ddp]
        [--out faults.md]

For each command a reference run goes uninterrupted.  Then, per trial, a fresh folder:
the same command is started and killed (``kill -9``) at a random moment, or at a chosen
point injected into the process (between writing a temporary file and renaming it, during
the final merge of a prediction, while a checkpoint is written), or one DDP rank is
killed; every process of the trial is then looked for (each carries a marker in its
environment), and any still alive a few seconds after the kill is an orphan.  The same
command is then rerun without faults, and its outputs are compared with the reference:

* simulate: ``info.csv``, ``simulate.json`` and every cutout, byte for byte;
* train: the bundle's weights and the last checkpoint's weights and optimiser state;
* predict: the table (bytes, with ``SOURCE_DATE_EPOCH`` fixed) and every sample.

Prints (and with ``--out`` writes) the table: trials, kills that hit a running process
(a random kill can come after a run already finished), survived (the rerun finished),
the outputs that differ, orphans and hangs.  Small inputs: a full run takes ~20 minutes on a
2-core CPU.  Not part of the test suite; run it on demand.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MARKER = "GAMPEN_FAULT_TRIAL"
#: Seconds a killed run's processes get to end before they count as orphans (PyTorch's
#: loader workers check their parent every 5 s).
ORPHAN_GRACE = 8.0
#: Seconds a run may take after one of its DDP ranks was killed before it counts as hung.
HANG_LIMIT = 120.0

#: Runs ``gampen.cli.main`` after injecting a fault named by the environment (in every
#: process: simulation workers and DDP ranks import this file too):
#: GAMPEN_FAULT=replace:N  kill -9 just before the N-th atomic rename (a temporary file
#:                         fully written, the final name not yet replaced);
#: GAMPEN_FAULT=merge      kill -9 during the merge, after the table, before the samples;
#: GAMPEN_FAULT=checkpoint:N  kill -9 while the N-th checkpoint's temporary file exists.
RUNNER = textwrap.dedent(
    """
    import os, signal, sys
    fault = os.environ.get("GAMPEN_FAULT", "")
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    if fault.startswith("replace:"):
        import gampen.atomic as atomic
        target, count, real = int(fault.split(":")[1]), [0], atomic.os.replace
        class OsProxy:
            def __getattr__(self, name):
                return getattr(os, name)
            def replace(self, a, b):
                count[0] += 1
                if count[0] == target:
                    die()
                return real(a, b)
        atomic.os = OsProxy()
    elif fault == "merge":
        from gampen.infer import parts
        real_write = parts.write_table
        def write_then_die(*args, **kwargs):
            real_write(*args, **kwargs)
            die()
        parts.write_table = write_then_die
    elif fault.startswith("checkpoint:"):
        from gampen.training import checkpoint_io
        target, count = int(fault.split(":")[1]), [0]
        real_save = checkpoint_io.SafeCheckpointIO.save_checkpoint
        real_atomic = checkpoint_io.atomic_path
        import contextlib
        @contextlib.contextmanager
        def dying_atomic(path):
            with real_atomic(path) as tmp:
                yield tmp
                count[0] += 1
                if count[0] == target:
                    die()
        checkpoint_io.atomic_path = dying_atomic
    if __name__ == "__main__":  # spawned workers import this file and get the fault too
        from gampen.cli import main
        sys.exit(main(sys.argv[1:]))
    """
)


@dataclass
class Row:
    """One line of the results table."""

    what: str
    trials: int = 0
    killed: int = 0
    survived: int = 0
    different: int = 0
    orphans: int = 0
    hangs: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Job:
    """A command to break: its arguments (run in a folder) and how to digest its output."""

    name: str
    args: list[str]
    digest: callable
    prepare: callable = lambda folder: None


def run(folder: Path, args: list[str], *, fault: str = "", trial: str = "ref", timeout=None):
    """Start the command in ``folder``; returns the Popen."""
    env = {**os.environ, MARKER: trial, "GAMPEN_FAULT": fault, "SOURCE_DATE_EPOCH": "1700000000"}
    env.pop("LOCAL_RANK", None)
    runner = folder.parent / "runner.py"  # a file: Lightning relaunches it for DDP ranks
    if not runner.exists():
        runner.write_text(RUNNER)
    return subprocess.Popen(
        [sys.executable, str(runner), *args],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def marked(trial: str) -> list[int]:
    """PIDs of live processes whose environment carries this trial's marker."""
    found = []
    needle = f"{MARKER}={trial}".encode() + b"\0"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes() + b"\0":
                state = (entry / "stat").read_text().split()[2]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def child_rank(trial: str) -> int | None:
    """The PID of the DDP rank-1 process of a trial, if it is running."""
    for pid in marked(trial):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"LOCAL_RANK=1" in environ:
            return pid
    return None


def orphans_after(trial: str) -> int:
    """Processes of the trial still alive after the grace period (then killed)."""
    deadline = time.time() + ORPHAN_GRACE
    while time.time() < deadline and marked(trial):
        time.sleep(0.25)
    left = marked(trial)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return len(left)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def simulate_digest(folder: Path) -> dict[str, str]:
    out = folder / "sims"
    files = [out / "info.csv", out / "simulate.json", *sorted((out / "cutouts").glob("*.fits"))]
    return {str(p.relative_to(folder)): file_digest(p) for p in files}


def train_digest(folder: Path) -> dict[str, str]:
    from gampen.training.checkpoint_io import SafeCheckpointIO

    digest = {"weights": file_digest(folder / "model" / "model.safetensors")}
    checkpoint = SafeCheckpointIO().load_checkpoint(
        folder / "model.run" / "checkpoints" / "last.ckpt"
    )
    for part in ("state_dict", "optimizer_states"):
        digest[part] = hashlib.sha256(_tensor_bytes(checkpoint[part])).hexdigest()
    return digest


def _tensor_bytes(value) -> bytes:
    """Every tensor and number of a nested structure, in a fixed order, as bytes."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().tobytes()
    if isinstance(value, dict):
        return b"".join(str(k).encode() + _tensor_bytes(value[k]) for k in sorted(value, key=str))
    if isinstance(value, list | tuple):
        return b"".join(_tensor_bytes(v) for v in value)
    return repr(value).encode()


def predict_digest(folder: Path) -> dict[str, str]:
    import h5py

    digest = {"table": file_digest(folder / "pred.parquet")}
    with h5py.File(folder / "samples.h5") as h5:
        digest["samples"] = hashlib.sha256(np.asarray(h5["samples"]).tobytes()).hexdigest()
        digest["ids"] = hashlib.sha256(np.asarray(h5["object_id"]).tobytes()).hexdigest()
    return digest


def trial(
    job: Job,
    root: Path,
    reference: dict,
    duration: float,
    rng: random.Random,
    fault: str,
    row: Row,
    ddp: bool,
) -> None:
    """One kill and one rerun; updates ``row``."""
    name = f"{job.name}-{row.trials}-{rng.random():.6f}"
    folder = root / name
    folder.mkdir()
    job.prepare(folder)
    row.trials += 1
    process = run(folder, job.args, fault=fault, trial=name)
    if ddp:
        wait = rng.uniform(0.2, 0.9) * duration
        end = time.time() + wait
        rank = None
        while time.time() < end and process.poll() is None:
            rank = child_rank(name) or rank
            time.sleep(0.05)
        rank = child_rank(name) or rank
        if rank is not None and process.poll() is None:
            os.kill(rank, signal.SIGKILL)
            row.killed += 1
        try:
            process.wait(timeout=HANG_LIMIT)
        except subprocess.TimeoutExpired:
            row.hangs += 1
            process.kill()
            process.wait()
    elif fault:
        row.killed += process.wait() != 0  # died of it (or of a killed worker)
    else:
        time.sleep(rng.uniform(0.3, 0.95) * duration)  # past start-up, mostly
        row.killed += process.poll() is None
        process.kill()
        process.wait()
    row.orphans += orphans_after(name)
    rerun = run(folder, job.args, trial=name + "-rerun")
    _, err = rerun.communicate()
    finished_before = "exists" in err and not list(folder.glob("*.partial"))
    if rerun.returncode != 0 and not finished_before:
        row.notes.append(f"{name} ({fault or 'random'}): rerun failed: {err.strip()[-300:]}")
        return
    # A prediction that finished before the kill (its part folder gone) is complete: the
    # rerun rightly refuses to overwrite it, and its outputs are compared as they are.
    row.survived += 1
    digest = job.digest(folder)
    changed = sorted(k for k in reference if reference[k] != digest.get(k))
    if changed:
        row.different += 1
        row.notes.append(f"{name} ({fault or 'random'}): differs in {changed[:4]}")
    shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="kills per command")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="simulate,train,predict,ddp")
    parser.add_argument("--out", help="also write the table as Markdown here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="gampen-faults-"))
    data = root / "data"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gampen",
            "simulate",
            "--preset",
            "hsc",
            "--n",
            "48",
            "--seed",
            "11",
            "--out",
            str(data),
            "--workers",
            "2",
            "--no-progress",
        ],
        check=True,
        capture_output=True,
    )
    tiny = root / "tiny.yaml"
    tiny.write_text(
        json.dumps({"network": {"widths": [8, 8, 16, 16], "hidden": 16, "stn_widths": [4, 8]}})
    )
    catalog = str(data / "info.csv")
    fast = ["--n-passes", "10", "--n-samples", "100", "--chunk-size", "8", "--num-workers", "1"]
    predict_args = [
        "predict",
        catalog,
        "--out",
        "pred.parquet",
        "--samples-out",
        "samples.h5",
        *fast,
        "--no-progress",
    ]
    jobs = {
        "simulate": (
            Job(
                "simulate",
                [
                    "simulate",
                    "--preset",
                    "hsc",
                    "--n",
                    "40",
                    "--seed",
                    "5",
                    "--out",
                    "sims",
                    "--workers",
                    "2",
                    "--no-progress",
                ],
                simulate_digest,
            ),
            ["", "", "", "replace:3", "replace:20"],
        ),
        "train": (
            Job(
                "train",
                [
                    "train",
                    catalog,
                    "--out",
                    "model",
                    "--config",
                    str(tiny),
                    "--epochs",
                    "4",
                    "--batch-size",
                    "16",
                    "--val-fraction",
                    "0.25",
                    "--test-fraction",
                    "0",
                    "--num-workers",
                    "1",
                    "--resume",
                    "--logger",
                    "csv",
                    "--no-progress",
                ],
                train_digest,
            ),
            ["", "", "", "checkpoint:2", "checkpoint:5", "replace:1"],
        ),
        "predict": (
            Job("predict", predict_args, predict_digest),
            ["", "", "", "merge", "replace:2", "replace:7"],
        ),
        "ddp": (
            Job(
                "ddp",
                [*predict_args, "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu"],
                predict_digest,
            ),
            ["ddp"],
        ),
    }
    rows = []
    for key in args.only.split(","):
        job, faults = jobs[key]
        reference_folder = root / f"{job.name}-reference"
        reference_folder.mkdir()
        start = time.time()
        process = run(reference_folder, job.args)
        _, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"{job.name}: the reference run failed: {err[-2000:]}")
        duration = time.time() - start
        reference = job.digest(reference_folder)
        row = Row(f"{job.name} ({duration:.0f} s a run)")
        for i in range(args.trials):
            fault = faults[i % len(faults)]
            trial(
                job,
                root,
                reference,
                duration,
                rng,
                "" if fault == "ddp" else fault,
                row,
                ddp=fault == "ddp",
            )
            print(
                f"{job.name} trial {i + 1}/{args.trials}: survived {row.survived}, different "
                f"{row.different}, orphans {row.orphans}, hangs {row.hangs}",
                flush=True,
            )
        rows.append(row)
    table = [
        "| run killed | trials | killed mid-run | survived | different | orphans | hangs |",
        "|---|---|---|---|---|---|---|",
    ]
    counts = ("trials", "killed", "survived", "different", "orphans", "hangs")
    table += [
        f"| {r.what} | " + " | ".join(str(getattr(r, k)) for k in counts) + " |" for r in rows
    ]
    total = [sum(getattr(r, k) for r in rows) for k in counts]
    table.append("| **all** | " + " | ".join(str(t) for t in total) + " |")
    text = "\n".join(table)
    print(text)
    for r in rows:
        for note in r.notes:
            print("  " + note)
    if args.out:
        Path(args.out).write_text(text + "\n")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
