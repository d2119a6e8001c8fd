import sys, numpy as np
K = sys.argv[1]
a, b = np.load(f"{sys.argv[2]}/ours_K{K}.npz"), np.load(f"{sys.argv[2]}/theirs_K{K}.npz")
for k in ["obs", "act", "rew", "next_obs", "done", "raw", "eps"]:
    x, y = a[k], b[k]
    x2 = x.reshape(len(x), -1).astype(np.float64); y2 = y.reshape(len(y), -1).astype(np.float64)
    if x2.shape != y2.shape:
        print(k, "SHAPE DIFF", x.shape, y.shape); continue
    diff = np.abs(x2 - y2).max(axis=1)
    bad = np.flatnonzero(diff > 1e-6)
    print(f"{k:9s} shape {x.shape} dtype {x.dtype}/{y.dtype} maxdiff {diff.max():.3g} n_bad {len(bad)}", "first bad", bad[:5] if len(bad) else "")
    for i in bad[:3]:
        print("   ours ", x[i]); print("   their", y[i])
