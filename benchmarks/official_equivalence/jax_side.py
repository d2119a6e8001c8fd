# Authors' side (JAX/haiku, their unmodified code under $OFF_SRC). Writes params, inputs, the exact random
# draws their code makes (reproduced from their key splits) and all outputs to $EQUIV_OUT/jax_{f32,f64}.npz.
# usage: JAX_PLATFORMS=cpu python jax_side.py [--x64]
import math
import os
import sys

X64 = "--x64" in sys.argv
import jax

jax.config.update("jax_enable_x64", X64)
import haiku as hk
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.environ.get("OFF_SRC", "/tmp/official-sdac/src"))
from relax.algorithm.sdac import SDAC
from relax.network.diffv2 import create_diffv2_net
from relax.utils.diffusion import GaussianDiffusion
from relax.utils.experience import Experience

DT = np.float64 if X64 else np.float32
OBS, ACT, B, N, K = 17, 6, 8, 32, 64
out = {}


def mish(x):  # scripts/train_mujoco.py:90-91
    return x * jnp.tanh(jax.nn.softplus(x))


# ---- 1. schedules as train_mujoco.py passes them (linear, beta_schedule_scale 0.8)
for T in (10, 20):
    Bc = GaussianDiffusion(T, 0.8, "linear").beta_schedule()
    for f in ("betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
              "sqrt_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
              "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2"):
        out[f"sched{T}_{f}"] = np.asarray(getattr(Bc, f))

T = 20
# ---- networks exactly as train_mujoco.py builds them (hidden 3x256, mish, T=20, 32 particles, noise 0.1, 0.8)
net, params = create_diffv2_net(jax.random.PRNGKey(0), OBS, ACT, [256] * 3, [256] * 3, mish, num_timesteps=T,
                                num_particles=N, noise_scale=0.1, beta_schedule_scale=0.8)
out["cfg_noise_scale"], out["cfg_target_entropy"] = net.noise_scale, net.target_entropy
out["cfg_log_alpha_init"] = np.asarray(params.log_alpha)
rng = np.random.default_rng(0)


def perturb(p, last_scale):  # non-zero biases and a spread of Q values so that the tests discriminate
    p = jax.tree_util.tree_map(np.asarray, hk.data_structures.to_mutable_dict(p))
    names = sorted(p, key=lambda s: int(s.split("_")[-1]) if s.split("/")[-1] != "linear" else 0)
    for i, n in enumerate(names):
        p[n]["b"] = (0.1 * rng.standard_normal(p[n]["b"].shape)).astype(np.float32)
        if i == len(names) - 1:
            p[n]["w"] = (p[n]["w"] * last_scale).astype(np.float32)
    return {n: {k: jnp.asarray(v.astype(DT)) for k, v in d.items()} for n, d in p.items()}


q1, q2, pol = perturb(params.q1, 30.0), perturb(params.q2, 30.0), perturb(params.policy, 1.0)
log_alpha = jnp.asarray(math.log(2.3), dtype=DT)  # a non-default lambda = 2.3
params = params._replace(q1=q1, q2=q2, target_q1=q1, target_q2=q2, policy=pol, target_poicy=pol, log_alpha=log_alpha)
for tag, p in (("q1", q1), ("q2", q2), ("pol", pol)):
    for n, d in p.items():
        for k, v in d.items():
            out[f"P_{tag}|{n}|{k}"] = np.asarray(v)
out["log_alpha"] = np.asarray(log_alpha)

# ---- inputs
obs = rng.standard_normal((B, OBS)).astype(DT)
x = rng.uniform(-1.5, 1.5, (B, ACT)).astype(DT)
tt = rng.integers(0, T, B)
act = rng.uniform(-1, 1, (B, ACT)).astype(DT)
out.update(obs=obs, x=x, t=tt, act=act)

# ---- 2. forward passes (their blocks.py, via net.policy / net.q = haiku apply)
from relax.network.blocks import scaled_sinusoidal_encoding

out["temb_sin"] = np.asarray(scaled_sinusoidal_encoding(jnp.asarray(tt), dim=16, batch_shape=(B,)))
out["eps"] = np.asarray(net.policy(pol, obs, x, jnp.asarray(tt)))
out["q1"], out["q2"] = np.asarray(net.q(q1, obs, act)), np.asarray(net.q(q2, obs, act))


# ---- 3. one p_sample (their GaussianDiffusion.p_sample) + its draws reproduced from the key; per-step trace
def draws_p_sample(key, shape):  # utils/diffusion.py:108-110
    xk, nk = jax.random.split(key)
    return np.asarray(jax.random.normal(xk, shape, dtype=DT)), np.asarray(jax.random.normal(nk, (T, *shape), dtype=DT))


diff = net.diffusion
key = jax.random.PRNGKey(1)
model_fn = lambda t, xx: net.policy(pol, obs, xx, t)  # noqa: E731
out["ps_out"] = np.asarray(diff.p_sample(key, model_fn, (B, ACT)))
zT, nz = draws_p_sample(key, (B, ACT))
out["ps_zT"], out["ps_noise"] = zT, nz
xx = 0.5 * jnp.asarray(zT)
trace_x, trace_mean, trace_logvar, trace_recon = [], [], [], []
Bc = diff.beta_schedule()
for j, t in enumerate(range(T - 1, -1, -1)):  # the scan body (diffusion.py:112-117), unrolled
    trace_x.append(np.asarray(xx))
    npred = model_fn(t, xx)
    recon = jnp.clip(xx * Bc.sqrt_recip_alphas_cumprod[t] - npred * Bc.sqrt_recipm1_alphas_cumprod[t], -1, 1)
    m, lv = diff.p_mean_variance(t, xx, npred)
    trace_mean.append(np.asarray(m)), trace_logvar.append(np.asarray(lv)), trace_recon.append(np.asarray(recon))
    xx = m + (t > 0) * jnp.exp(0.5 * lv) * nz[j]
out.update(ps_trace_x=np.stack(trace_x), ps_trace_mean=np.stack(trace_mean), ps_trace_logvar=np.stack(trace_logvar),
           ps_trace_recon=np.stack(trace_recon), ps_unrolled=np.asarray(xx))


# ---- 4. get_action: best-of-32 + exploration noise (network/diffv2.py:41-63), draws reproduced
def draws_get_action(key, nobs):
    key, noise_key = jax.random.split(key)
    keys = jax.random.split(key, N)
    zs, ns = zip(*[draws_p_sample(k, (nobs, ACT)) for k in keys])
    return np.stack(zs), np.stack(ns), np.asarray(jax.random.normal(noise_key, (nobs, ACT), dtype=DT))


key = jax.random.PRNGKey(2)
out["ga_out"] = np.asarray(net.get_action(key, (pol, log_alpha, q1, q2), obs))
out["ga_z"], out["ga_noise"], out["ga_expl"] = draws_get_action(key, B)
# candidates and their min-Q (same code as get_action.sample) for the argmax
cand = jax.vmap(lambda k: diff.p_sample(k, model_fn, (B, ACT)))(jax.random.split(jax.random.split(key)[0], N))
out["ga_cand"] = np.asarray(cand.clip(-1, 1))
obs_b = jnp.broadcast_to(obs, (N, *obs.shape))
out["ga_candq"] = np.asarray(jnp.minimum(net.q(q1, obs_b, cand), net.q(q2, obs_b, cand)))
out["ga_best"] = np.asarray(jnp.argmax(out["ga_candq"], axis=0))
if not X64:
    out["ga_det"] = np.asarray(net.get_deterministic_action((pol, log_alpha, q1, q2), obs))

# ---- 5. RSSM loss (algorithm/sdac.py:130-170), written with their diffusion functions, and its gradient
a0 = jnp.asarray(out["ga_out"])
rk = jax.random.PRNGKey(3)
k_t, k1, k2 = jax.random.split(rk, 3)
t5 = jax.random.randint(k_t, (B,), 0, T)
noise1 = jax.random.normal(k1, (B, ACT), dtype=DT)
noise2 = jax.random.normal(k2, (B * K, ACT), dtype=DT)
tilde_at = jax.vmap(diff.q_sample)(t5, a0, noise1)
tilde_at_r, t_r, wide_obs = jnp.repeat(tilde_at, K, axis=0), jnp.repeat(t5, K, axis=0), jnp.repeat(obs, K, axis=0)


def get_min_q(s, a):
    return jnp.minimum(net.q(q1, s, a), net.q(q2, s, a))


def policy_loss_fn(policy_params):  # verbatim from algorithm/sdac.py:146-168
    def denoiser(t, x):
        return net.policy(policy_params, wide_obs, x, t)

    recon = diff.get_recon(t_r, tilde_at_r, noise2).clip(-1, 1)
    q_min = get_min_q(wide_obs, recon) * 5. / jnp.exp(log_alpha)
    q_reshape = q_min.reshape((-1, K))
    Z = jax.nn.logsumexp(q_reshape, axis=1, keepdims=True)
    q_weights = jnp.exp(q_reshape - Z).flatten()
    loss = diff.reverse_samping_weighted_p_loss(noise2, q_weights, denoiser, t_r, tilde_at_r)
    return loss, (q_weights, q_min, recon)


(loss5, (w5, qmin5, recon5)), g5 = jax.value_and_grad(policy_loss_fn, has_aux=True)(pol)
out.update(rs_a0=np.asarray(a0), rs_t=np.asarray(t5), rs_noise1=np.asarray(noise1), rs_noise2=np.asarray(noise2),
           rs_at=np.asarray(tilde_at), rs_recon=np.asarray(recon5), rs_w=np.asarray(w5), rs_qscaled=np.asarray(qmin5),
           rs_loss=np.asarray(loss5))
for n, d in g5.items():
    for k, v in d.items():
        out[f"G_pol|{n}|{k}"] = np.asarray(v)

# ---- 6 (+ optimisers): three real SDAC.stateless_update steps (u = 0, 1, 2) with the train_mujoco.py hyperparameters
algo = SDAC(net, params, lr=3e-4, alpha_lr=7e-3, delay_alpha_update=250.0, lr_schedule_end=3e-5)
data = Experience(obs=jnp.asarray(obs), action=jnp.asarray(act), reward=jnp.asarray(rng.standard_normal(B) * 5, DT),
                  next_obs=jnp.asarray(rng.standard_normal((B, OBS)).astype(DT)),
                  done=jnp.asarray(np.array([0, 1, 0, 0, 0, 1, 0, 0], bool)))
out.update(d_reward=np.asarray(data.reward), d_next_obs=np.asarray(data.next_obs), d_done=np.asarray(data.done))
for step in range(3):
    key = jax.random.PRNGKey(100 + step)
    ks = jax.random.split(key, 7)  # algorithm/sdac.py:94-95
    next_eval_key, new_eval_key, _, _, _, diffusion_time_key, diffusion_noise_key = ks
    z, ns, ex = draws_get_action(next_eval_key, B)
    out.update({f"u{step}_next_z": z, f"u{step}_next_noise": ns, f"u{step}_next_expl": ex})
    z, ns, ex = draws_get_action(new_eval_key, B)
    out.update({f"u{step}_new_z": z, f"u{step}_new_noise": ns, f"u{step}_new_expl": ex})
    out[f"u{step}_t"] = np.asarray(jax.random.randint(diffusion_time_key, (B,), 0, T))
    dk1, dk2 = jax.random.split(diffusion_noise_key, 2)
    out[f"u{step}_noise1"] = np.asarray(jax.random.normal(dk1, (B, ACT), dtype=DT))
    out[f"u{step}_noise2"] = np.asarray(jax.random.normal(dk2, (B * K, ACT), dtype=DT))
    sp = algo.state.params
    # the critic target, as at sdac.py:113-117
    na = net.get_action(next_eval_key, (sp.policy, sp.log_alpha, sp.q1, sp.q2), data.next_obs)
    qt = jnp.minimum(net.q(sp.target_q1, data.next_obs, na), net.q(sp.target_q2, data.next_obs, na))
    out[f"u{step}_next_action"] = np.asarray(na)
    out[f"u{step}_q_backup"] = np.asarray(data.reward * 0.2 + (1 - data.done) * 0.99 * qt)
    info, _ = algo.update(key, data)
    for k, v in info.items():
        out[f"u{step}_info_{k}"] = np.asarray(v)
    sp = algo.state.params
    for tag in ("q1", "q2", "target_q1", "target_q2", "policy", "target_poicy"):
        for n, d in getattr(sp, tag).items():
            for k, v in d.items():
                out[f"u{step}_S_{tag}|{n}|{k}"] = np.asarray(v)
    out[f"u{step}_S_log_alpha"] = np.asarray(sp.log_alpha)
    print("step", step, {k: float(v) for k, v in info.items() if np.ndim(v) == 0})

np.savez(f"{os.environ.get('EQUIV_OUT', '.')}/jax_{'f64' if X64 else 'f32'}.npz", **out)
print("saved", len(out), "arrays")
