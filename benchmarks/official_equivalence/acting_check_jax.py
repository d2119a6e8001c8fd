# Which policy does the authors' trainer act with? off_policy.py:137 calls algorithm.get_action(key, obs); run it on an
# SDAC whose online policy differs from its EMA (target_poicy) copy and see which one the action comes from.
import os, sys
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, os.environ.get("OFF_SRC", "/tmp/official-sdac/src"))
from relax.algorithm.sdac import SDAC
from relax.algorithm.base import Algorithm
from relax.network.diffv2 import create_diffv2_net
mish = lambda x: x * jnp.tanh(jax.nn.softplus(x))
net, params = create_diffv2_net(jax.random.PRNGKey(0), 17, 6, [256] * 3, [256] * 3, mish, num_timesteps=20,
                                num_particles=32, noise_scale=0.1, beta_schedule_scale=0.8)
_, p2 = create_diffv2_net(jax.random.PRNGKey(7), 17, 6, [256] * 3, [256] * 3, mish, num_timesteps=20,
                          num_particles=32, noise_scale=0.1, beta_schedule_scale=0.8)
params = params._replace(policy=p2.policy)  # online policy != EMA policy (target_poicy)
algo = SDAC(net, params, lr=3e-4, alpha_lr=7e-3, delay_alpha_update=250.0, lr_schedule_end=3e-5)
print("SDAC.get_action is defined in", SDAC.get_action.__qualname__, "(overrides Algorithm.get_action:",
      SDAC.get_action is not Algorithm.get_action, ")")
obs = np.random.default_rng(0).standard_normal((5, 17)).astype(np.float32)
key = jax.random.PRNGKey(3)
a = algo.get_action(key, obs)  # what trainer/off_policy.py:137 calls
sp = algo.state.params
a_ema = np.asarray(net.get_action(key, (sp.target_poicy, sp.log_alpha, sp.q1, sp.q2), obs))
a_onl = np.asarray(net.get_action(key, (sp.policy, sp.log_alpha, sp.q1, sp.q2), obs))
print("max|a - a(EMA policy)|   ", np.abs(a - a_ema).max())
print("max|a - a(online policy)|", np.abs(a - a_onl).max())
