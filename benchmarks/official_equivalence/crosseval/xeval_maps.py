# The haiku -> torch parameter maps (benchmarks/official_equivalence/torch_side.py's load_actor / load_q) for
# the authors' saved policies converted to npz (convert.py, dpmd_export.py); xeval.py checks them on fixed inputs.
import numpy as np
import torch


def tt(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


def src_of(J):
    def src(tag, i):
        n = ("dacer_policy_net" if tag == "pol" else "q_net") + "/linear" + ("" if i == 0 else f"_{i}")
        return J[f"P_{tag}|{n}|w"], J[f"P_{tag}|{n}|b"]
    return src


def load_actor(actor, src):  # torch_side.py load_actor: haiku [in, out] -> torch [out, in]
    layers = [actor.time_emb.net[0], actor.time_emb.net[2], actor.net[0], actor.net[2], actor.net[4], actor.net[6]]
    with torch.no_grad():
        for i, l in enumerate(layers):
            w, b = src("pol", i)
            l.weight.copy_(tt(w).T), l.bias.copy_(tt(b))


def load_q(qf, src):  # torch_side.py load_q: BatchedLinear holds [2, in, out]
    with torch.no_grad():
        for i, l in enumerate([qf.net[0], qf.net[2], qf.net[4], qf.net[6]]):
            (w1, b1), (w2, b2) = src("q1", i), src("q2", i)
            l.weight.copy_(tt(np.stack([w1, w2]))), l.bias.copy_(tt(np.stack([b1, b2])[:, None]))
