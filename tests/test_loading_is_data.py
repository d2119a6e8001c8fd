"""A file we load is data (issue 36): checkpoints and saved models are read with torch.load(weights_only=True), so a
file that holds anything but tensors and plain types is refused in one line and nothing in it runs, through
--resume, --eval-only and the command line; a saved model of another algorithm is refused by name; non-finite
weights are never written and never evaluated; a write that fails (a full disk) is one line, leaves no partial file
and keeps the checkpoint from before."""

import glob
import os
import subprocess
import sys

import pytest
import torch

import dacer_continuous_action as dacer
import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac

SCRIPTS = pytest.mark.parametrize("script", [sdac, sac, dpmd, dacer], ids=["sdac", "sac", "dpmd", "dacer"])
TINY = dict(
    env_id="Hopper-v4",
    num_envs=2,
    learning_starts=40,
    batch_size=16,
    log_interval=20,
    eval_interval=0,
    eval_episodes=2,
    buffer_size=1000,
    cuda=False,
    total_timesteps=100,
    checkpoint_interval=100,
    checkpoint_buffer=True,
    save_model=True,
)


def tiny(script, **kw):
    extra = {} if script is sac else dict(num_candidates=2, diffusion_steps=3)
    if script is sdac:
        extra["num_reverse_samples"] = 4
    if script is dacer:
        extra = dict(diffusion_steps=3, entropy_samples=8)
    return script.Args(**{**TINY, **extra, **kw})


class Payload:
    """What a crafted file would carry: unpickling it calls open(marker, "w"), which creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def trained(request, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return request.param, request.param.train(tiny(request.param))


ALL = pytest.mark.parametrize("trained", [sdac, sac, dpmd, dacer], ids=["sdac", "sac", "dpmd", "dacer"], indirect=True)


@ALL
def test_our_files_load_as_data(trained):
    script, out = trained
    (model,) = glob.glob(f"{out['run_dir']}/*_model")
    for path in (out["checkpoint"], model):
        torch.load(path, weights_only=True)  # raises if anything but tensors and plain types is in it


@ALL
def test_a_payload_in_a_real_checkpoint_does_not_run(trained, tmp_path):
    script, out = trained
    (model,) = glob.glob(f"{out['run_dir']}/*_model")
    for source, name in [(out["checkpoint"], "ckpt.pt"), (model, "model.pt")]:
        torch.save({**torch.load(source, weights_only=True), "extra": Payload(tmp_path / "marker")}, tmp_path / name)
    with pytest.raises(SystemExit, match="holds objects other than tensors and plain data, not loaded"):
        script.train(tiny(script, total_timesteps=200, resume=str(tmp_path / "ckpt.pt")))
    for name in ("ckpt.pt", "model.pt"):
        with pytest.raises(SystemExit, match="could run code"):
            script.evaluate_saved(script.Args(eval_only=True, load_model=str(tmp_path / name)))
    assert not (tmp_path / "marker").exists(), "the payload ran"
    proc = subprocess.run(
        [sys.executable, script.__file__, "--resume", str(tmp_path / "ckpt.pt")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1 and "could run code" in proc.stderr
    assert not (tmp_path / "marker").exists(), "the payload ran from the command line"


@ALL
def test_a_saved_model_of_another_algorithm_is_refused_by_name(trained, tmp_path):
    script, out = trained
    (model,) = glob.glob(f"{out['run_dir']}/*_model")
    saved = torch.load(model, weights_only=True)
    for other in {sdac, sac, dpmd, dacer} - {script}:
        name = other.ALGORITHM
        torch.save({**saved, "format": f"{name.lower()}-model-v1"}, tmp_path / "tagged.pt")
        refused = f"is not a saved model or a checkpoint of {script.ALGORITHM}: {name.lower()}-model-v1"
        with pytest.raises(SystemExit, match=refused):
            script.evaluate_saved(script.Args(eval_only=True, load_model=str(tmp_path / "tagged.pt")))
    # an untagged model (written before the tag), of another algorithm: known by options this script lacks
    other = dpmd if script is sdac else sdac
    foreign = {k: v for k, v in saved.items() if k != "format"}
    foreign["args"] = {**saved["args"], **{f: 1 for f in vars(other.Args()) if f not in vars(script.Args())}}
    torch.save(foreign, tmp_path / "untagged.pt")
    with pytest.raises(SystemExit, match=f"of {script.ALGORITHM}: a saved model of another algorithm"):
        script.evaluate_saved(script.Args(eval_only=True, load_model=str(tmp_path / "untagged.pt")))
    mine = {k: v for k, v in saved.items() if k != "format"}  # an untagged model of this algorithm still evaluates
    torch.save(mine, tmp_path / "mine.pt")
    returns = script.evaluate_saved(script.Args(eval_only=True, load_model=str(tmp_path / "mine.pt"), eval_episodes=2))
    assert len(returns) == 2


@ALL
def test_non_finite_weights_are_never_evaluated_or_written(trained, tmp_path):
    script, out = trained
    (model,) = glob.glob(f"{out['run_dir']}/*_model")
    saved = torch.load(model, weights_only=True)
    saved["qf"] = {k: v.fill_(float("nan")) if k.endswith("bias") else v for k, v in saved["qf"].items()}
    torch.save(saved, tmp_path / "nan.pt")
    with pytest.raises(SystemExit, match="nan.pt holds non-finite values in qf: no policy to evaluate"):
        script.evaluate_saved(script.Args(eval_only=True, load_model=str(tmp_path / "nan.pt")))
    before = os.path.getmtime(out["checkpoint"]), open(out["checkpoint"], "rb").read()
    diverged = {**torch.load(out["checkpoint"], weights_only=True), "qf": saved["qf"]}
    with pytest.raises(SystemExit, match="non-finite values in qf: checkpoint not written to .*the one there is from"):
        script.write(diverged, out["checkpoint"], "checkpoint")
    assert (os.path.getmtime(out["checkpoint"]), open(out["checkpoint"], "rb").read()) == before


@ALL
def test_a_failed_write_leaves_no_partial_file_and_keeps_the_last_checkpoint(trained, monkeypatch):
    script, out = trained
    before = open(out["checkpoint"], "rb").read()

    def full_disk(obj, path):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 3840 vs 3724")

    monkeypatch.setattr(torch, "save", full_disk)
    failed = r"cannot write checkpoint .*checkpoint.pt \(\[enforce fail.*; the one there is from before"
    with pytest.raises(SystemExit, match=failed):
        script.write(torch.load(out["checkpoint"], weights_only=True), out["checkpoint"], "checkpoint")
    assert open(out["checkpoint"], "rb").read() == before and not os.path.exists(out["checkpoint"] + ".tmp")
    monkeypatch.undo()
    with pytest.raises(SystemExit, match=r"cannot write model gone/m.pt \(.*\); none was written before"):
        script.write({"x": torch.ones(2)}, "gone/m.pt", "model")  # a run folder deleted under the run
