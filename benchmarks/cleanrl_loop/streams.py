"""The random draws both loops share, from fixed numpy generators: warm-up actions, replay indices, policy noise and
the initial weights. Each loop is patched to take its draws from here instead of its own RNG, so the two runs see
the same numbers in the same order; everything else is each script's own code."""
import os

import numpy as np
import torch

_warm, _idx, _noise = (np.random.default_rng(s) for s in (11, 12, 13))


def warm(n: int, d: int) -> np.ndarray:  # uniform random actions of the warm-up, float32 as both scripts store them
    return _warm.uniform(-1, 1, (n, d)).astype(np.float32)


def indices(upper: int, batch_size: int) -> np.ndarray:  # replay indices, uniform over the filled part
    return _idx.integers(0, upper, batch_size)


def noise(shape) -> torch.Tensor:  # the Gaussian noise of the reparameterised tanh-Gaussian sample
    return torch.as_tensor(_noise.standard_normal(tuple(shape)), dtype=torch.get_default_dtype())


def _uniform(rng, out_dim, in_dim):  # nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b
    bound = 1 / np.sqrt(in_dim)
    return rng.uniform(-bound, bound, (out_dim, in_dim)), rng.uniform(-bound, bound, out_dim)


def initial_weights(obs_dim: int, act_dim: int, hidden: int = 256) -> dict:
    """One draw of CleanRL's networks: actor fc1, fc2, fc_mean, fc_logstd; critics q1 and q2 (fc1, fc2, fc3)."""
    rng = np.random.default_rng(14)
    w = {}
    for name, (o, i) in dict(fc1=(hidden, obs_dim), fc2=(hidden, hidden), fc_mean=(act_dim, hidden),
                             fc_logstd=(act_dim, hidden)).items():  # fmt: skip
        w[f"actor.{name}"] = _uniform(rng, o, i)
    for q in ("q1", "q2"):
        for name, (o, i) in dict(fc1=(hidden, obs_dim + act_dim), fc2=(hidden, hidden), fc3=(1, hidden)).items():
            w[f"{q}.{name}"] = _uniform(rng, o, i)
    return {k: tuple(torch.as_tensor(x, dtype=torch.get_default_dtype()) for x in v) for k, v in w.items()}


ROUND = int(os.environ.get("ROUND", "0"))


def rounded(step_out):
    """ROUND=n: observations and rewards rounded to n decimals on both sides, so that the two gymnasium versions'
    last-bit differences (rewards differ by ~2e-10) do not reach the learners; the simulator keeps full precision."""
    if not ROUND:
        return step_out
    obs, rew, term, trunc, infos = step_out
    return np.round(obs, ROUND), np.round(rew, ROUND), term, trunc, infos


class Recorder:
    """Every step of the training env (one env): the action it received, the reward, terminated and truncated."""

    def __init__(self):
        self.actions, self.rewards, self.terms, self.truncs = [], [], [], []

    def record(self, actions, rewards, terms, truncs):
        self.actions.append(np.array(actions, dtype=np.float64).reshape(-1))
        self.rewards.append(float(np.asarray(rewards).reshape(-1)[0]))
        self.terms.append(bool(np.asarray(terms).reshape(-1)[0]))
        self.truncs.append(bool(np.asarray(truncs).reshape(-1)[0]))

    def save(self, path: str, **extra):
        np.savez(path, actions=np.array(self.actions), rewards=np.array(self.rewards), terms=np.array(self.terms),
                 truncs=np.array(self.truncs), **extra)  # fmt: skip
