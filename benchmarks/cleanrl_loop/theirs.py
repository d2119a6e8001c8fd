"""CleanRL's sac_continuous_action.py (its __main__ block, run as a script) in float64 with its random draws taken
from streams.py. Patched: Normal.rsample's noise, ReplayBuffer.sample's indices (and float64 batches), and, as
text edits each asserted to apply once:
  - the warm-up's action_space.sample() -> streams.warm;
  - a hook after the target critics are built that loads streams' initial weights;
  - torch.Tensor(obs) -> torch.Tensor(obs.astype(np.float32)): the float32 rounding it does in CleanRL's own dtype;
  - one-step alignment with our counter (ours counts env steps from 1, CleanRL from 0): CleanRL's first update
    comes one env step after its first policy action, ours with it; so `global_step > learning_starts` becomes
    `>=`, and the parity tests inside the update block (policy updates, logging) use global_step + 1.
Run in CleanRL's venv (gymnasium 0.29.1). Records every env step and a probe of alpha, the actor and Q1."""
import os
import sys

os.environ["OMP_NUM_THREADS"] = "1"
HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("CLEANRL_SRC", "/tmp/cleanrl/src")
sys.path[:0] = [SRC, HERE]
import numpy as np  # noqa: E402
import torch  # noqa: E402
import gymnasium as gym  # noqa: E402
from cleanrl_utils import buffers  # noqa: E402

import streams  # noqa: E402

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
STEPS = int(os.environ.get("STEPS", "8000"))
W = streams.initial_weights(11, 3)
rec, probe, ns = streams.Recorder(), [], {}
PROBE_OBS = torch.linspace(-1, 1, 11)[None]
PROBE_ACT = torch.tensor([[0.3, -0.2, 0.1]])

torch.distributions.Normal.rsample = lambda self, sample_shape=torch.Size(): self.loc + streams.noise(self.loc.shape) * self.scale


def sample(self, batch_size):
    assert not self.full and not self.optimize_memory_usage
    s = self._get_samples(streams.indices(self.pos, batch_size))
    return buffers.ReplayBufferSamples(*(t.double() for t in s))


buffers.ReplayBuffer.sample = sample


def load(actor, qf1, qf2, qf1_target, qf2_target):
    with torch.no_grad():
        for name in ("fc1", "fc2", "fc_mean", "fc_logstd"):
            getattr(actor, name).weight.copy_(W[f"actor.{name}"][0]); getattr(actor, name).bias.copy_(W[f"actor.{name}"][1])  # noqa: E702
        for q, nets in (("q1", (qf1, qf1_target)), ("q2", (qf2, qf2_target))):
            for net in nets:
                for name in ("fc1", "fc2", "fc3"):
                    getattr(net, name).weight.copy_(W[f"{q}.{name}"][0]); getattr(net, name).bias.copy_(W[f"{q}.{name}"][1])  # noqa: E702


vec_step = gym.vector.SyncVectorEnv.step


def step(self, actions):
    out = streams.rounded(vec_step(self, actions))
    rec.record(actions, out[1], out[2], out[3])
    with torch.no_grad():
        mean, log_std = ns["actor"](PROBE_OBS)
        probe.append([ns["log_alpha"].exp().item(), *mean[0].tolist(), *log_std[0].tolist(),
                      ns["qf1"](PROBE_OBS, PROBE_ACT)[0, 0].item()])  # fmt: skip
    return out


gym.vector.SyncVectorEnv.step = step

src = open(os.path.join(SRC, "cleanrl/sac_continuous_action.py")).read()
edits = [
    ("actions = np.array([envs.single_action_space.sample() for _ in range(envs.num_envs)])",
     "actions = streams.warm(envs.num_envs, envs.single_action_space.shape[0])"),
    ("    qf2_target.load_state_dict(qf2.state_dict())\n",
     "    qf2_target.load_state_dict(qf2.state_dict())\n    load(actor, qf1, qf2, qf1_target, qf2_target)\n"),
    ("actor.get_action(torch.Tensor(obs).to(device))", "actor.get_action(torch.Tensor(obs.astype(np.float32)).to(device))"),
    ("if global_step > args.learning_starts:", "if global_step >= args.learning_starts:"),
    ("if global_step % args.policy_frequency == 0:", "if (global_step + 1) % args.policy_frequency == 0:"),
    ("if global_step % 100 == 0:", "if (global_step + 1) % 100 == 0:"),
]
for old, new in edits:
    assert src.count(old) == 1, old
    src = src.replace(old, new)
os.chdir(os.environ.get("LOOP_OUT", "."))
sys.argv = ["sac_continuous_action.py", "--env-id", "Hopper-v4", "--seed", "1", "--total-timesteps", str(STEPS),
            "--learning-starts", "5000"]  # fmt: skip
ns.update(__name__="__main__", __file__=os.path.join(SRC, "cleanrl/sac_continuous_action.py"), streams=streams, load=load)
exec(compile(src, "cleanrl/sac_continuous_action.py", "exec"), ns)
rec.save("theirs.npz", probe=np.array(probe))
print("theirs: recorded", len(rec.actions), "steps")
