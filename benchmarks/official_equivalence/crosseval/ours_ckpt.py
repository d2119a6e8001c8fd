# our final SDAC checkpoints (55k env steps incl. 5k warm-up = their 50k), 100 episodes with our evaluate()
import glob, os, sys

import numpy as np
import torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
import sdac_continuous_action as S
torch.set_num_threads(1)
device = torch.device("cpu")
for path in sys.argv[1:]:
    # data only: tensors, plain types and numpy arrays (the 2026-11 studies' v3 checkpoints hold numpy's RNG state)
    with torch.serialization.safe_globals([np._core.multiarray._reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType]):
        ck = torch.load(path, weights_only=True, map_location="cpu")
    args = S.Args(**{k: v for k, v in ck["args"].items() if k in S.Args.__dataclass_fields__})
    args.cuda = False
    sched = S.make_schedule(args.beta_schedule, args.diffusion_steps, args.linear_beta_scale, device)
    env = S.make_vector_env(args.env_id, 20)
    scale, bias = S.check_env(args.env_id)
    obs_dim, act_dim = env.single_observation_space.shape[0], env.single_action_space.shape[0]
    actor, qf = S.NoiseNetwork(obs_dim, act_dim), S.TwinQNetwork(obs_dim, act_dim)
    actor.load_state_dict(ck["actor_ema"]); qf.load_state_dict(ck["qf"])
    torch.manual_seed(0)
    rets = []
    for k in range(5):
        r, _ = S.evaluate(lambda o: S.make_policy(sched, args)(actor, qf, o, 0.0), env, scale, bias, device, seed=args.seed + 100_000 + 1000 * k)
        rets.append(np.asarray(r))
    r = np.concatenate(rets)
    print(path.split("/")[-2], "step", ck["global_step"], f"100 eps: {r.mean():.1f} +- {r.std()/10:.1f} (sem), blocks",
          " ".join(f"{x.mean():.1f}" for x in rets), "last eval in ckpt", ck["eval_history"][-1])
