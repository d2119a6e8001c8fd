"""--eval-only --load-model PATH, for each RL script: a saved model and a checkpoint of the same weights give the
same returns for the same seed; the weights in the file are the ones evaluated; bad files get one-line errors."""

import glob
import os

import numpy as np
import pytest
import torch

import dacer_continuous_action as dacer
import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac

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
    save_model=True,
)
SCRIPTS = pytest.mark.parametrize(
    "script, error, tiny",
    [
        pytest.param(
            sdac, SystemExit, dict(TINY, num_candidates=2, num_reverse_samples=4, diffusion_steps=3), id="sdac"
        ),
        pytest.param(sac, SystemExit, TINY, id="sac"),
        pytest.param(dpmd, SystemExit, dict(TINY, num_candidates=2, diffusion_steps=3), id="dpmd"),
        pytest.param(dacer, SystemExit, dict(TINY, diffusion_steps=3, entropy_samples=8), id="dacer"),
    ],
)


@SCRIPTS
def test_eval_only_evaluates_the_files_policy(script, error, tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = script.train(script.Args(**tiny))
    (model,) = glob.glob(f"{out['run_dir']}/*_model")
    capsys.readouterr()

    def evaluate(path, **kw):
        return script.evaluate_saved(
            script.cli_args(["--eval-only", "--load-model", path, "--eval-episodes", "3", *kw.get("more", [])])
        )

    from_model = evaluate(model)
    assert len(from_model) == 3 and capsys.readouterr().out.startswith(f"{model}: Hopper-v4, 3 episodes: return ")
    np.testing.assert_array_equal(evaluate(out["checkpoint"]), from_model)  # the same weights at the same step
    assert not np.array_equal(evaluate(model, more=["--seed", "2"]), from_model), "the seed sets the episodes"
    # other weights in the file, other returns: the file's policy is the one evaluated
    saved = torch.load(model, weights_only=True)
    for key in ("actor", "actor_ema"):
        if key in saved:
            saved[key] = {k: torch.zeros_like(v) for k, v in saved[key].items()}
    torch.save(saved, tmp_path / "zeroed.pt")
    assert not np.array_equal(evaluate(str(tmp_path / "zeroed.pt")), from_model)


@SCRIPTS
def test_eval_only_bad_input(script, error, tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match="--eval-only needs --load-model"):
        script.evaluate_saved(script.Args(eval_only=True))
    with pytest.raises(error, match="model not found: nope.pt"):
        script.evaluate_saved(script.Args(eval_only=True, load_model="nope.pt"))
    (tmp_path / "garbage.pt").write_bytes(b"garbage")
    with pytest.raises(
        error, match=f"garbage.pt is not a saved model or a checkpoint of {script.ALGORITHM}: not a file"
    ):
        script.evaluate_saved(script.Args(eval_only=True, load_model="garbage.pt"))
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(error, match=f"is not a saved model or a checkpoint of {script.ALGORITHM}"):
        script.evaluate_saved(script.Args(eval_only=True, load_model="other.pt"))
    with pytest.raises(error, match="--load-model is for --eval-only"):
        script.train(script.Args(**tiny, load_model="other.pt"))


@SCRIPTS
def test_eval_only_needs_nothing_but_the_file(script, error, tiny, tmp_path, monkeypatch):
    """A model from a resumed run stores the --resume path it continued from; evaluating it elsewhere, where that
    checkpoint does not exist, still works (the path is the run's history, not an input of the evaluation)."""
    monkeypatch.chdir(tmp_path)
    out = script.train(script.Args(**tiny))
    script.train(script.Args(**{**tiny, "total_timesteps": 140}, resume=out["checkpoint"]))
    (model,) = glob.glob(f"{out['run_dir']}/*_model")
    assert torch.load(model, weights_only=True)["args"]["resume"] == out["checkpoint"]
    os.remove(out["checkpoint"])
    assert len(script.evaluate_saved(script.Args(eval_only=True, load_model=model, eval_episodes=2))) == 2
