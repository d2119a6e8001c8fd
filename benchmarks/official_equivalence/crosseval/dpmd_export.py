# Authors' venv. Their DPMD's saved policy-<step>-<upd>.pkl (EMA policy, log_alpha, q1, q2; the trainer saves
# get_policy_params_to_save) -> npz in convert.py's key layout, for dpmd_qspread.py, with their networks' eps_theta and
# Q1/Q2 on fixed inputs (haiku apply, as create_diffv2_net builds them for Hopper-v4 at T = 10; ref_forward.py's
# inputs) so the torch side can check its parameter map.
# usage: JAX_PLATFORMS=cpu python dpmd_export.py OUT_DIR RUN_FOLDER[:STEP] ...   (STEP: their step, after warm-up)
import glob, os, pickle, sys
import numpy as np
sys.path.insert(0, "/tmp/official-sdac/src")
import jax, jax.numpy as jnp
from relax.network.diffv2 import create_diffv2_net

mish = lambda x: x * jnp.tanh(jax.nn.softplus(x))  # noqa: E731  (scripts/train_mujoco.py)
net, _ = create_diffv2_net(jax.random.PRNGKey(0), 11, 3, [256] * 3, [256] * 3, mish, num_timesteps=10,
                           num_particles=4, noise_scale=0.1, beta_schedule_scale=0.8)
rng = np.random.default_rng(7)
ref = dict(obs=rng.standard_normal((16, 11)).astype(np.float32), x=rng.uniform(-1.2, 1.2, (16, 3)).astype(np.float32),
           t=rng.integers(0, 10, 16), act=rng.uniform(-1, 1, (16, 3)).astype(np.float32))

out_dir = sys.argv[1]
for spec in sys.argv[2:]:
    folder, _, step = spec.partition(":")
    (path,) = glob.glob(f"{folder}/policy-{step or 45000}-*.pkl")
    with open(path, "rb") as f:
        pol, log_alpha, q1, q2 = pickle.load(f)
    out = {"log_alpha": np.asarray(log_alpha), **{f"ref_{k}": v for k, v in ref.items()},
           "ref_eps": np.asarray(net.policy(pol, ref["obs"], ref["x"], jnp.asarray(ref["t"]))),
           "ref_q1": np.asarray(net.q(q1, ref["obs"], ref["act"])), "ref_q2": np.asarray(net.q(q2, ref["obs"], ref["act"]))}
    for name, p in (("pol", pol), ("q1", q1), ("q2", q2)):
        for n, d in p.items():
            for k, v in d.items():
                out[f"P_{name}|{n}|{k}"] = np.asarray(v)
    dst = os.path.join(out_dir, os.path.basename(folder.rstrip("/")) + f"_{step or 45000}.npz")
    np.savez(dst, **out)
    print(dst, os.path.basename(path), "lambda", float(np.exp(log_alpha)))
