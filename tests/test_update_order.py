"""SDAC's order within an iteration (issue 38): with --update-before-step (the default) an iteration acts, issues its
updates, then steps the envs and stores the transitions, so that on a GPU the updates run while the envs step; they
sample the buffer without that step's transitions. --no-update-before-step restores the older order: act, step,
store, update. Checked on the events of real runs: the order, the buffer's size at each sample, and a run with no
warm-up (the first iteration has nothing to sample)."""

import pytest

import sdac_continuous_action as sdac

TINY = dict(
    env_id="Pendulum-v1",
    num_envs=2,
    batch_size=4,
    num_candidates=2,
    num_reverse_samples=2,
    diffusion_steps=2,
    eval_interval=0,
    eval_episodes=1,
    checkpoint_interval=0,
    buffer_size=100,
    cuda=False,
)


def record_events(monkeypatch) -> list:
    """("step",), ("add", size after), ("sample", size) of the training envs and the replay buffer, in order."""
    events, real_make_env = [], sdac.make_vector_env
    real_add, real_sample = sdac.ReplayBuffer.add, sdac.ReplayBuffer.sample

    def make_vector_env(env_id, num_envs, *a, **k):
        envs = real_make_env(env_id, num_envs, *a, **k)
        if num_envs == TINY["num_envs"]:  # the training envs (the evaluation has 1)
            real_step = envs.step
            envs.step = lambda actions: (events.append(("step",)), real_step(actions))[1]
        return envs

    def add(self, *a):
        real_add(self, *a)
        events.append(("add", self.size))

    def sample(self, n):
        events.append(("sample", self.size))
        return real_sample(self, n)

    monkeypatch.setattr(sdac, "make_vector_env", make_vector_env)
    monkeypatch.setattr(sdac.ReplayBuffer, "add", add)
    monkeypatch.setattr(sdac.ReplayBuffer, "sample", sample)
    return events


@pytest.mark.parametrize("update_before_step", [True, False], ids=["before-step", "after-step"])
def test_updates_come_before_the_env_step_and_miss_its_transitions(tmp_path, monkeypatch, update_before_step):
    monkeypatch.chdir(tmp_path)
    events = record_events(monkeypatch)
    sdac.train(sdac.Args(**TINY, learning_starts=10, total_timesteps=20, update_before_step=update_before_step))
    kinds = [e[0] for e in events]
    assert kinds[:10] == ["step", "add"] * 5, "warm-up: steps of 2 envs up to step 10, no update"
    training = kinds[10:]
    expected = ["sample", "step", "add"] if update_before_step else ["step", "add", "sample"]
    assert training == expected * 5, training
    stored = 10
    for e in events[10:]:
        if e[0] == "add":
            stored += 2
            assert e[1] == stored
        elif e[0] == "sample":
            assert e[1] == stored, "an update samples what the buffer holds at that moment"
    samples = [e[1] for e in events if e[0] == "sample"]
    assert samples == ([10, 12, 14, 16, 18] if update_before_step else [12, 14, 16, 18, 20])


def test_no_warm_up_updates_from_the_second_iteration(tmp_path, monkeypatch):
    """--learning-starts 0: the first iteration's update, issued before its env step, finds an empty buffer and is
    skipped; every later iteration updates."""
    monkeypatch.chdir(tmp_path)
    events = record_events(monkeypatch)
    sdac.train(sdac.Args(**TINY, learning_starts=0, total_timesteps=10))
    assert [e[1] for e in events if e[0] == "sample"] == [2, 4, 6, 8]
