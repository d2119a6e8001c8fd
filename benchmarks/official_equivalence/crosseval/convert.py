# Authors' venv: policy-<step>-<upd>.pkl = (target_poicy (EMA policy), log_alpha, q1, q2) -> npz with the
# key layout of benchmarks/official_equivalence/jax_side.py: P_pol|<haiku name>|w/b, P_q1|..., P_q2|..., log_alpha
import glob, os, pickle, sys
import numpy as np
sys.path.insert(0, "/tmp/official-sdac/src")
import jax  # noqa: F401  (unpickling jax arrays)

ROOT = "/tmp/official-sdac/src/logs/Hopper-v4"
RUNS = {"s1": "sdac_2026-11-23_14-09-20_s1_cmp_s1", "s2": "sdac_2026-11-23_16-54-15_s2_cmp_s2"}
for tag, folder in RUNS.items():
    for step in (25000, 50000):
        (path,) = glob.glob(f"{ROOT}/{folder}/policy-{step}-*.pkl")
        with open(path, "rb") as f:
            pol, log_alpha, q1, q2 = pickle.load(f)
        out = {"log_alpha": np.asarray(log_alpha)}
        for name, p in (("pol", pol), ("q1", q1), ("q2", q2)):
            for n, d in p.items():
                for k, v in d.items():
                    out[f"P_{name}|{n}|{k}"] = np.asarray(v)
        dst = f"/tmp/xeval/{tag}_{step}.npz"
        np.savez(dst, **out)
        print(dst, os.path.basename(path), "log_alpha", float(log_alpha), {k: v.shape for k, v in out.items() if k.endswith("|w")})
