"""Where do the two loops part? Per env step: the action each env received, the reward, and a probe taken after the
step (alpha, the actor's mean and log-std at a fixed state, Q1 at a fixed state-action)."""
import sys

import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "."
a, b = np.load(f"{out}/ours.npz"), np.load(f"{out}/theirs.npz")
n = min(len(a["rewards"]), len(b["rewards"]))
print(f"steps recorded: ours {len(a['rewards'])}, CleanRL {len(b['rewards'])}")
for k in ("actions", "rewards", "terms", "truncs", "probe"):
    x, y = a[k][:n].astype(np.float64).reshape(n, -1), b[k][:n].astype(np.float64).reshape(n, -1)
    d = np.abs(x - y).max(1)
    bad = np.flatnonzero(d > 1e-6)
    print(f"{k:8s} max diff {d.max():.3g}; first step with diff > 1e-6: {bad[0] + 1 if len(bad) else 'none'}")
    for lo in range(0, n, 1000):
        print(f"    steps {lo + 1:5d}-{min(lo + 1000, n):5d}: max diff {d[lo:lo + 1000].max():.3g}")
print("episodes ended: ours", int((a["terms"] | a["truncs"]).sum()), "CleanRL", int((b["terms"] | b["truncs"]).sum()))
print("alpha at the last step: ours", a["probe"][n - 1, 0], "CleanRL", b["probe"][n - 1, 0])
