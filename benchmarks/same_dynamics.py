"""Is Hopper-v4 the same simulator under CleanRL's pins (gymnasium 0.29.1, mujoco 2.3.3) and ours (gymnasium 1.4.0,
mujoco 3.3.7)? Steps 20 episodes of a fixed feedback policy with fixed noise and saves every observation and reward;
run it once in each venv, then compare the two files.

    /tmp/cleanrl/venv/bin/python benchmarks/same_dynamics.py /tmp/theirs.npy
    python benchmarks/same_dynamics.py /tmp/ours.npy
    python benchmarks/same_dynamics.py --compare /tmp/theirs.npy /tmp/ours.npy
"""

import sys

import numpy as np

if sys.argv[1] == "--compare":
    a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
    assert a.shape == b.shape, f"different episode lengths: {a.shape} vs {b.shape}"
    print(f"{a.shape[0]} steps; max |difference| {np.abs(a - b).max():.3g} (observations and rewards)")
    sys.exit(0)

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402

env, rows = gym.make("Hopper-v4"), []
for episode in range(20):
    obs, _ = env.reset(seed=episode)
    rng = np.random.default_rng(episode)
    for _ in range(1000):
        action = 0.3 * rng.uniform(-1, 1, 3) + 0.5 * np.tanh(-obs[2:5])  # noisy posture feedback: long episodes
        obs, reward, terminated, truncated, _ = env.step(action)
        rows.append(np.append(obs, reward))
        if terminated or truncated:
            break
np.save(sys.argv[1], np.array(rows))
print(f"gymnasium {gym.__version__}, mujoco {mujoco.__version__}: {len(rows)} steps -> {sys.argv[1]}")
