# Authors' venv: eps_theta and Q1/Q2 of their networks (haiku apply, as create_diffv2_net builds them for this run:
# Hopper 11/3, 3x256 mish, T=10) on fixed inputs, for each converted pickle -> ref_<run>_<step>.npz
import sys
import numpy as np
sys.path.insert(0, "/tmp/official-sdac/src")
import jax, jax.numpy as jnp
from relax.network.diffv2 import create_diffv2_net

mish = lambda x: x * jnp.tanh(jax.nn.softplus(x))  # noqa: E731  (scripts/train_mujoco.py)
net, _ = create_diffv2_net(jax.random.PRNGKey(0), 11, 3, [256] * 3, [256] * 3, mish, num_timesteps=10,
                           num_particles=4, noise_scale=0.1, beta_schedule_scale=0.8)
rng = np.random.default_rng(7)
obs = rng.standard_normal((16, 11)).astype(np.float32)
x = rng.uniform(-1.2, 1.2, (16, 3)).astype(np.float32)
t = rng.integers(0, 10, 16)
act = rng.uniform(-1, 1, (16, 3)).astype(np.float32)
for name in ("s1_25000", "s1_50000", "s2_25000", "s2_50000"):
    J = dict(np.load(f"/tmp/xeval/{name}.npz"))
    P = lambda tag: {k.split("|")[1]: {} for k in J if k.startswith(f"P_{tag}|")}  # noqa: E731
    params = {}
    for tag in ("pol", "q1", "q2"):
        d = P(tag)
        for n in d:
            d[n] = {"w": jnp.asarray(J[f"P_{tag}|{n}|w"]), "b": jnp.asarray(J[f"P_{tag}|{n}|b"])}
        params[tag] = d
    np.savez(f"/tmp/xeval/ref_{name}.npz", obs=obs, x=x, t=t, act=act,
             eps=np.asarray(net.policy(params["pol"], obs, x, jnp.asarray(t))),
             q1=np.asarray(net.q(params["q1"], obs, act)), q2=np.asarray(net.q(params["q2"], obs, act)))
    print("wrote ref_" + name)
