"""Vector-env handling: true final observations, done = terminated, every episode logged; the replay buffer.
The SDAC and SAC scripts each carry their own copy of this code (each file is a lesson of its own): both are tested."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import dacer_continuous_action
import dpmd_continuous_action
import sac_continuous_action
import sdac_continuous_action

SCRIPTS = pytest.mark.parametrize("script", [sdac_continuous_action, sac_continuous_action], ids=["sdac", "sac"])


class CountingEnv(gym.Env):
    """obs = [env index, episode number, t]; reward = t. Odd episodes terminate at t = 2 + env index;
    the others are truncated by the TimeLimit at t = 5. Sub-envs therefore end episodes at different times."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    created = 0  # the sub-envs of one vector env get indices 0, 1, ... in the order they are made

    def __init__(self):
        self.index, self.episode, self.t = CountingEnv.created, -1, 0
        CountingEnv.created += 1

    def _obs(self):
        return np.array([self.index, self.episode, self.t], dtype=np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        terminated = self.episode % 2 == 1 and self.t == 2 + self.index
        return self._obs(), float(self.t), terminated, False, {}


gym.register("CountingEnv-v0", entry_point=CountingEnv, max_episode_steps=5, disable_env_checker=True)


@SCRIPTS
def test_final_observations_flags_and_episodes_in_a_run(script, tmp_path, monkeypatch):
    """train() on CountingEnv: its replay buffer read back from the final checkpoint, its episodes from TensorBoard."""
    monkeypatch.chdir(tmp_path)
    n, steps, CountingEnv.created = 3, 40, 0  # check_env's env is 0, the training envs 1..n
    tiny = dict(
        env_id="CountingEnv-v0",
        num_envs=n,
        total_timesteps=n * steps,
        learning_starts=n * steps - 1,
        batch_size=8,
        buffer_size=1000,
        cuda=False,
        eval_interval=0,
        eval_episodes=1,
        checkpoint_interval=n * steps,
        checkpoint_buffer=True,
    )
    if script is sdac_continuous_action:
        tiny.update(num_candidates=2, diffusion_steps=3, num_reverse_samples=4)
    out = script.train(script.Args(**tiny))
    buf = torch.load(out["checkpoint"], weights_only=True)["buffer"]
    rb = script.ReplayBuffer(1000, 3, 1, torch.device("cpu"))
    rb.load_state_dict(buf)
    acc = EventAccumulator(out["run_dir"], size_guidance={"scalars": 0})
    acc.Reload()
    lengths = [e.value for e in acc.Scalars("charts/episodic_length")]
    episodes = list(zip([e.value for e in acc.Scalars("charts/episodic_return")], lengths))

    assert rb.size == n * steps, "every vector step stores num_envs real transitions"
    o, a, r, o2, done = (x.numpy() for x in rb.data)
    o, o2, r, done = o[: rb.size], o2[: rb.size], r[: rb.size], done[: rb.size]
    # s' is the true successor of s: same env, same episode, t + 1 (never the next episode's reset observation)
    assert np.array_equal(o2[:, :2], o[:, :2]) and np.array_equal(o2[:, 2], o[:, 2] + 1)
    assert np.array_equal(r, o2[:, 2])
    # done = terminated only: odd episodes end at t = 2 + index; truncation at t = 5 is not done
    terminated = (o2[:, 1] % 2 == 1) & (o2[:, 2] == 2 + o2[:, 0])
    truncated = ~terminated & (o2[:, 2] == 5)
    assert np.array_equal(done, terminated.astype(np.float32))
    assert terminated.sum() > 0 and truncated.sum() > 0
    # after an episode ends the next stored s is that env's reset observation (t = 0, next episode)
    ends = np.flatnonzero(terminated | truncated)
    follow = ends + n  # rows of one env are n apart
    follow = follow[follow < rb.size]
    assert np.array_equal(o[follow, 2], np.zeros(len(follow))) and np.array_equal(o[follow, 1], o[follow - n, 1] + 1)
    # every finished episode is logged, with its return and length, including episodes that end together
    assert len(episodes) == len(ends)
    assert sorted(episodes) == sorted((float(sum(range(1, int(t) + 1))), int(t)) for t in o2[ends, 2])


@SCRIPTS
def test_replay_buffer_wraps_around_and_round_trips(script):
    rb = script.ReplayBuffer(5, 2, 1, torch.device("cpu"))
    for k in range(4):  # 8 transitions into 5 slots
        rb.add(np.full((2, 2), k), np.zeros((2, 1)), np.array([k, k]), np.full((2, 2), k + 1), np.array([0, 1]))
    assert rb.size == 5 and rb.ptr == 3
    assert sorted(rb.data.rewards.tolist()) == [1.0, 2.0, 2.0, 3.0, 3.0], "the oldest transitions are overwritten"
    batch = rb.sample(64)
    assert batch.obs.shape == (64, 2) and batch.actions.shape == (64, 1) and batch.rewards.shape == (64,)
    assert torch.equal(batch.next_obs, batch.obs + 1)
    copy = script.ReplayBuffer(5, 2, 1, torch.device("cpu"))
    copy.load_state_dict(rb.state_dict())
    assert copy.size == rb.size and copy.ptr == rb.ptr
    for x, y in zip(copy.data, rb.data):
        assert torch.equal(x, y)


@pytest.mark.parametrize(
    "env_id",
    [
        "Ant-v4",
        "HalfCheetah-v4",
        "Humanoid-v4",
        "Walker2d-v4",
        "Hopper-v4",
        "Swimmer-v4",
        "Reacher-v4",
        "Pusher-v5",
        "InvertedPendulum-v4",
        "InvertedDoublePendulum-v4",
    ],
)
def test_the_papers_ten_tasks_can_be_created(env_id):
    scale, bias = sdac_continuous_action.check_env(env_id)
    assert np.all(scale > 0) and np.all(np.isfinite(bias))
    sac_scale, sac_bias = sac_continuous_action.check_env(env_id)
    assert np.array_equal(sac_scale, scale) and np.array_equal(sac_bias, bias)


gym.register("TruncatedHopper-v4", entry_point="gymnasium.envs.mujoco.hopper_v4:HopperEnv", max_episode_steps=25)


def hopper_terminal(obs: np.ndarray) -> np.ndarray:
    """Hopper-v4's termination, read off an observation [qpos[1:], clip(qvel, +-10)]: z <= 0.7, |angle| >= 0.2 or a
    state entry beyond +-100 (hopper_v4.py, is_healthy)."""
    z, angle = obs[:, 0], obs[:, 1]
    return ~((z > 0.7) & (np.abs(angle) < 0.2) & (np.abs(obs[:, 1:]) < 100).all(1))


@pytest.mark.parametrize(
    "script",
    [sdac_continuous_action, sac_continuous_action, dpmd_continuous_action, dacer_continuous_action],
    ids=["sdac", "sac", "dpmd", "dacer"],
)
def test_what_train_stores_for_terminated_and_truncated_episodes(script, tmp_path, monkeypatch):
    """A real run of train() (random warm-up, then the policy) on Hopper with a 25-step time limit, its replay buffer
    read back from the final checkpoint. Every stored s' is the successor of s in the same episode; where an episode
    ended, s' is its true final observation (not the next episode's reset observation), done = 1 exactly where that
    s' is terminal by Hopper's own rule, and episodes cut at 25 steps are stored with done = 0. Catches: next_obs for
    the final observation, terminated | truncated as done, transitions lost or duplicated."""
    monkeypatch.chdir(tmp_path)
    n, total = 2, 400
    tiny = dict(
        env_id="TruncatedHopper-v4",
        num_envs=n,
        learning_starts=200,
        total_timesteps=total,
        batch_size=16,
        buffer_size=1000,
        cuda=False,
        eval_interval=0,
        eval_episodes=1,
        checkpoint_interval=total,
        checkpoint_buffer=True,
        log_interval=100,
    )
    if script is dacer_continuous_action:
        tiny.update(diffusion_steps=3, entropy_samples=8)
    elif script is not sac_continuous_action:
        tiny.update(num_candidates=2, diffusion_steps=3)
        if script is sdac_continuous_action:
            tiny.update(num_reverse_samples=4)
    out = script.train(script.Args(**tiny))
    buf = torch.load(out["checkpoint"], weights_only=True)["buffer"]
    assert buf["size"] == total, "every vector step stores num_envs transitions"
    o, a, r, o2, done = (x.numpy() for x in buf["data"])
    endings = []  # (length, done) of every episode that ended, both envs
    for i in range(n):  # env i's transitions are rows i, i + n, i + 2n, ...
        s, s2, d = o[i::n], o2[i::n], done[i::n]
        np.testing.assert_array_equal(d, hopper_terminal(s2).astype(np.float32), "done = terminated, from s' itself")
        ends = ~np.all(s2[:-1] == s[1:], axis=1)  # where the next stored s is not this s', an episode ended
        assert np.array_equal(ends, ends | (d[:-1] == 1)), "a terminal s' always ends its episode"
        t = 0
        for k, end in enumerate(ends):
            t += 1
            if end:
                endings.append((t, d[k]))
                assert d[k] == 1 or t == 25, f"env {i}: an episode ended at step {t} neither terminated nor truncated"
                t = 0
            assert t < 25, "no episode runs past the time limit"
    assert (25, 0) in endings, "truncations happened, stored with done = 0"
    assert any(d == 1 for _, d in endings), "terminations happened, stored with done = 1"
