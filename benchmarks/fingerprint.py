"""A short-run fingerprint of SDAC, DPMD and SAC: each script run from its command line for a few thousand env steps
on Hopper-v4 with small settings that still reach every part of an update (best of N, K reverse samples, the lr
decay, lambda / alpha tuning, delayed policy and target updates, two gradient steps per iteration), a checkpoint in
the middle and a resume from it to the end. Prints per script the evaluation returns and the SHA-256 of every tensor
of the final saved model (networks, EMA, targets, lambda or alpha), in sorted order. A change that should not alter
behaviour must leave every line identical; run before and after on the same machine (the float sums of a matmul may
differ between CPUs).

    python benchmarks/fingerprint.py                     # all three, about a minute on 2 cores
    python benchmarks/fingerprint.py --scripts sdac      # one
    python benchmarks/fingerprint.py --scripts sdac --extra=--no-one-chain   # with more options
"""

import argparse
import glob
import hashlib
import os
import re
import subprocess
import sys
import tempfile

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMON = [
    "--env-id",
    "Hopper-v4",
    "--seed",
    "3",
    "--total-timesteps",
    "3000",
    "--learning-starts",
    "1000",
    "--eval-interval",
    "1000",
    "--eval-episodes",
    "3",
    "--gradient-steps",
    "2",
    "--batch-size",
    "64",
    "--checkpoint-interval",
    "2000",
    "--save-model",
    "--no-cuda",
    "--progress-seconds",
    "0",
]
DIFFUSION = [
    "--num-candidates",
    "4",
    "--diffusion-steps",
    "5",
    "--policy-lr-decay-begin",
    "100",
    "--policy-lr-decay-steps",
    "200",
    "--lambda-update-interval",
    "50",
]
SCRIPTS = {
    "sdac": ("sdac_continuous_action.py", DIFFUSION + ["--num-reverse-samples", "8"]),
    "dpmd": ("dpmd_continuous_action.py", DIFFUSION),
    "sac": ("sac_continuous_action.py", []),
}


def tensor_digest(saved: dict) -> str:
    """SHA-256 over every tensor of a saved model, keys sorted, each tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256()

    def visit(prefix: str, obj) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            h.update(f"{prefix}|{t.dtype}|{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
        elif isinstance(obj, dict):
            for k in sorted(obj, key=str):
                visit(f"{prefix}.{k}", obj[k])

    visit("", {k: v for k, v in saved.items() if k != "args"})
    return h.hexdigest()


def run(cmd: list[str], cwd: str) -> str:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout


def fingerprint(name: str, more: list[str]) -> tuple[list[str], str]:
    script, extra = SCRIPTS[name]
    extra = extra + more
    with tempfile.TemporaryDirectory() as tmp:
        first = run([sys.executable, os.path.join(REPO, script), *COMMON, *extra, "--total-timesteps", "2000"], tmp)
        ckpt = glob.glob(f"{tmp}/runs/*/checkpoint.pt")
        assert len(ckpt) == 1, ckpt
        second = run(
            [sys.executable, os.path.join(REPO, script), "--resume", ckpt[0], "--total-timesteps", "3000"], tmp
        )
        returns = re.findall(r"global_step=(\d+), eval_return=(\S+ \+- \S+)", first + second)
        (model,) = glob.glob(f"{tmp}/runs/*/*_model")
        digest = tensor_digest(torch.load(model, map_location="cpu", weights_only=True))
    return [f"{step}: {ret}" for step, ret in returns], digest


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scripts", nargs="+", default=list(SCRIPTS), choices=list(SCRIPTS))
    parser.add_argument("--extra", default="", help="more options for the scripts, as one string")
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    status = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "*.py"], capture_output=True, text=True)
    print(
        f"commit {commit.strip()}{' (with uncommitted changes)' if status.stdout.strip() else ''}, torch {torch.__version__}"
    )
    cli = parser.parse_args()
    for name in cli.scripts:
        returns, digest = fingerprint(name, cli.extra.split())
        print(f"{name}{' ' + cli.extra if cli.extra else ''}: eval {' | '.join(returns)} | sha256 {digest}", flush=True)
