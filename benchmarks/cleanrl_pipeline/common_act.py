import numpy as np
_rng = np.random.default_rng(0)  # the same fixed policy on both sides
W, U = _rng.standard_normal((3, 11)), _rng.uniform(-1, 1, (100_000, 3))
def act(step, obs):  # obs: (1, 11) float64 from the env
    a = np.clip(0.5 * np.tanh(obs.astype(np.float64) @ W.T) + 0.3 * U[step], -1, 1)
    return a.astype(np.float32)
