"""Our sac_continuous_action.py's train(), unchanged, in float64 with its random draws taken from streams.py.
Patched: the warm-up's np.random.uniform, ReplayBuffer.sample's indices (float32 storage, float64 batches), torch.randn_like (the policy noise), the
networks' initial weights, and a float64 cast of the acting observation (which train() rounds to float32, as
CleanRL's torch.Tensor(obs) does). Records every env step and a probe of alpha, the actor and Q1."""
import os
import sys

os.environ["OMP_NUM_THREADS"] = "1"
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", ".."), HERE]
import numpy as np  # noqa: E402
import torch  # noqa: E402
import gymnasium as gym  # noqa: E402

import sac_continuous_action as S  # noqa: E402
import streams  # noqa: E402

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
STEPS = int(os.environ.get("STEPS", "8000"))
W = streams.initial_weights(11, 3)
rec, probe, handles = streams.Recorder(), [], {}
PROBE_OBS = torch.linspace(-1, 1, 11)[None]
PROBE_ACT = torch.tensor([[0.3, -0.2, 0.1]])

np.random.uniform = lambda low, high, size: streams.warm(*size)  # the warm-up's only call of np.random.uniform
torch.randn_like = lambda t: streams.noise(t.shape)  # get_action's only random draw


def sample(self, batch_size):
    idx = torch.as_tensor(streams.indices(self.size, batch_size))
    return S.Batch(*(buf[idx].double() for buf in self.data))


buffer_init = S.ReplayBuffer.__init__


def buffer_init_(self, *a, **k):  # float32 storage, as in a real run (torch.zeros would follow the float64 default)
    buffer_init(self, *a, **k)
    self.storage = self.storage.float()
    self.data = self.fields(self.storage)


S.ReplayBuffer.sample, S.ReplayBuffer.__init__ = sample, buffer_init_

actor_init, twin_init, actor_forward = S.Actor.__init__, S.TwinQNetwork.__init__, S.Actor.forward


def actor_init_(self, *a, **k):
    actor_init(self, *a, **k)
    handles["actor"] = self
    with torch.no_grad():
        self.net[0].weight.copy_(W["actor.fc1"][0]); self.net[0].bias.copy_(W["actor.fc1"][1])  # noqa: E702
        self.net[2].weight.copy_(W["actor.fc2"][0]); self.net[2].bias.copy_(W["actor.fc2"][1])  # noqa: E702
        self.net[4].weight.copy_(torch.cat([W["actor.fc_mean"][0], W["actor.fc_logstd"][0]]))
        self.net[4].bias.copy_(torch.cat([W["actor.fc_mean"][1], W["actor.fc_logstd"][1]]))


def twin_init_(self, *a, **k):
    twin_init(self, *a, **k)
    handles.setdefault("qf", self)  # the first one built is the online critic
    with torch.no_grad():
        for li, name in [(0, "fc1"), (2, "fc2"), (4, "fc3")]:
            self.net[li].weight.copy_(torch.stack([W[f"q1.{name}"][0].T, W[f"q2.{name}"][0].T]))
            self.net[li].bias.copy_(torch.stack([W[f"q1.{name}"][1], W[f"q2.{name}"][1]])[:, None, :])


S.Actor.__init__, S.TwinQNetwork.__init__ = actor_init_, twin_init_
S.Actor.forward = lambda self, obs: actor_forward(self, obs.to(torch.float64))

make_update = S.make_update


def make_update_(actor, qf, qf_target, log_alpha, *a, **k):
    handles["log_alpha"] = log_alpha
    return make_update(actor, qf, qf_target, log_alpha, *a, **k)


S.make_update = make_update_

vec_step = gym.vector.SyncVectorEnv.step


def step(self, actions):
    out = streams.rounded(vec_step(self, actions))
    if self.num_envs == 1:  # the training env (evaluation uses eval_episodes envs)
        rec.record(actions, out[1], out[2], out[3])
        with torch.no_grad():
            mean, log_std = handles["actor"](PROBE_OBS)
            probe.append([handles["log_alpha"].exp().item(), *mean[0].tolist(), *log_std[0].tolist(),
                          handles["qf"](PROBE_OBS, PROBE_ACT)[0, 0].item()])  # fmt: skip
    return out


gym.vector.SyncVectorEnv.step = step

os.chdir(os.environ.get("LOOP_OUT", "."))
S.train(S.Args(env_id="Hopper-v4", seed=1, num_envs=1, learning_starts=5000, total_timesteps=STEPS, eval_interval=0,
               eval_episodes=2, log_interval=10**9))  # fmt: skip
rec.save("ours.npz", probe=np.array(probe))
print("ours: recorded", len(rec.actions), "steps")
