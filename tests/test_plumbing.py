"""The RL scripts share their plumbing line for line, so that a diff of any two (sdac_, sac_, dpmd_,
dacer_continuous_action.py) shows only the algorithm, and the copies cannot drift apart again. Each script reads in
the order a learner needs: arguments, the algorithm, the training loop, then the plumbing; and the algorithm,
everything above train(), runs alone, so that a reader can copy it without the plumbing."""

import ast
import builtins
import difflib
import os
import subprocess
import sys
import symtable

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = [
    "sdac_continuous_action.py",
    "sac_continuous_action.py",
    "dpmd_continuous_action.py",
    "dacer_continuous_action.py",
]
RULE = "# " + "=" * 117
SECTIONS = [
    "class Args:",
    RULE + "\n# The algorithm:",
    RULE + "\n# Training loop",
    "\ndef train(",
    RULE + "\n# Plumbing:",
]


def read(name: str) -> str:
    with open(os.path.join(REPO, name)) as f:
        return f.read()


def plumbing(text: str) -> str:
    """Everything from the plumbing's header to the end of the file."""
    return text[text.index(RULE + "\n# Plumbing:") :]


@pytest.mark.parametrize("name", SCRIPTS)
def test_sections_come_in_the_order_a_learner_needs(name):
    text = read(name)
    positions = [text.find(marker) for marker in SECTIONS]
    assert -1 not in positions, f"{name} lacks {SECTIONS[positions.index(-1)]!r}"
    assert positions == sorted(positions), f"{name}: sections out of order: {positions}"
    assert all(text.count(marker) == 1 for marker in SECTIONS[1:]), "each section header once"


@pytest.mark.parametrize("other", SCRIPTS[1:])
def test_plumbing_is_identical_in_every_script(other):
    sdac, copy = plumbing(read(SCRIPTS[0])), plumbing(read(other))
    if sdac != copy:
        diff = difflib.unified_diff(sdac.splitlines(), copy.splitlines(), SCRIPTS[0], other, lineterm="", n=1)
        pytest.fail(
            "the plumbing differs between the scripts (edit all, or move the line above the plumbing):\n"
            + "\n".join(list(diff)[:40])
        )


def test_the_check_would_catch_a_drift():
    text = read(SCRIPTS[0])
    drifted = text.replace("def make_vector_env(", "def make_vector_envs(")
    assert plumbing(drifted) != plumbing(text)


def lesson(text: str) -> str:
    """Everything above train(): the arguments and the algorithm, the part a reader copies."""
    return text[: text.index(RULE + "\n# Training loop")]


def unbound_names(source: str, namespace: dict) -> set[str]:
    """The global names that the functions and classes of `source` read and neither it nor the builtins define."""
    missing, tables = set(), [symtable.symtable(source, "lesson", "exec")]
    while tables:
        table = tables.pop()
        tables += table.get_children()
        if table.get_type() != "module":
            missing |= {s.get_name() for s in table.get_symbols() if s.is_global() and not s.is_assigned()}
    return {n for n in missing if n not in namespace and not hasattr(builtins, n)}


def lesson_namespace(name: str) -> dict:
    namespace = {"__name__": "lesson", "__file__": os.path.join(REPO, name)}
    exec(compile(lesson(read(name)), name, "exec"), namespace)  # runs alone: nothing below train() exists
    return namespace


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_algorithm_runs_without_the_plumbing(name):
    """A reader who copies everything above train() gets code that needs nothing from the plumbing: no name it reads
    is defined only below (checked on the source, every function), and one whole update runs in it."""
    ns = lesson_namespace(name)
    missing = unbound_names(lesson(read(name)), ns)
    assert not missing, f"{name}: the algorithm reads {sorted(missing)}, which only the plumbing defines"
    torch.manual_seed(0)
    obs_dim, act_dim, B = 4, 2, 8
    data = ns["Batch"](
        torch.randn(B, obs_dim), torch.rand(B, act_dim) * 2 - 1, torch.randn(B), torch.randn(B, obs_dim), torch.zeros(B)
    )
    qf, qf_target = ns["TwinQNetwork"](obs_dim, act_dim), ns["TwinQNetwork"](obs_dim, act_dim)
    q_opt = torch.optim.Adam(qf.parameters())
    if name.startswith("sac"):
        args = ns["Args"]()
        actor = ns["Actor"](obs_dim, act_dim)
        log_alpha = torch.zeros((), requires_grad=True)
        opts = q_opt, torch.optim.Adam(actor.parameters()), torch.optim.Adam([log_alpha])
        update = ns["make_update"](actor, qf, qf_target, log_alpha, *opts, -float(act_dim), args)
        stats = update(data, args.policy_frequency - 1)  # the critic step, then the delayed policy steps
    elif name.startswith("dacer"):
        args = ns["Args"](diffusion_steps=3, entropy_samples=8)
        actor = ns["NoiseNetwork"](obs_dim, act_dim)
        log_alpha, sigma_bar = torch.zeros((), requires_grad=True), torch.full((2,), -1.0)
        sched = ns["make_schedule"](args.beta_schedule, args.diffusion_steps, args.linear_beta_scale)
        opts = q_opt, torch.optim.Adam(actor.parameters()), torch.optim.Adam([log_alpha])
        update = ns["make_update"](
            ns["make_policy"](sched, args), actor, qf, qf_target, log_alpha, sigma_bar, *opts, sched, args
        )
        stats = update(data, log_alpha.detach().exp(), 0)  # update 0: the critics, the policy and alpha
        assert log_alpha.item() != 0.0 and "entropy" in stats, "alpha stepped"
    else:
        args = ns["Args"](num_candidates=2, diffusion_steps=3, **({"num_reverse_samples": 4} if "sdac" in name else {}))
        actor, actor_ema = ns["NoiseNetwork"](obs_dim, act_dim), ns["NoiseNetwork"](obs_dim, act_dim)
        log_lam = torch.zeros((), requires_grad=True)
        sched = ns["make_schedule"](args.beta_schedule, args.diffusion_steps)
        extra = [torch.tensor([0.0, 1.0])] if name.startswith("dpmd") else []  # DPMD's running Q statistics
        update, update_lambda = ns["make_update"](
            ns["make_policy"](sched, args),
            actor,
            actor_ema,
            qf,
            qf_target,
            log_lam,
            *extra,
            q_opt,
            torch.optim.Adam(actor.parameters()),
            torch.optim.Adam([log_lam]),
            sched,
            args,
        )
        stats = update(data, log_lam.detach().exp(), 0)
        update_lambda()
        assert log_lam.item() != 0.0, "lambda stepped"
    assert "actor_loss" in stats and all(torch.isfinite(v) for v in stats.values())


def test_the_unbound_name_check_would_catch_a_plumbing_name():
    text = lesson(read(SCRIPTS[0]))
    ns = lesson_namespace(SCRIPTS[0])
    leaked = text.replace('        group["lr"].fill_(lr)', '        group["lr"].fill_(lr)\n        crossed(1, 1, 1)')
    assert leaked != text and unbound_names(leaked, ns) == {"crossed"}


# defined in more than one script's algorithm, differing on purpose: the arguments, the authors' file cited in the
# lr schedule's docstring, each algorithm's update, SAC's own networks and evaluation policy
DIFFER_ON_PURPOSE = {"Args", "policy_lr_at", "make_update", "mlp", "BatchedLinear", "TwinQNetwork", "saved_policy"}
# and in one script only: DACER's policy, with no best of N and no critic in its call
OWN = {"dacer_continuous_action.py": {"make_policy", "sample_actions"}}
# what each script copies from SDAC's (DACER's distributional critics have no min_q)
CHAIN = {"make_schedule", "reverse_diffusion", "NoiseNetwork", "TimeEmbedding"}
COPIED = {
    "sac_continuous_action.py": {"Batch", "min_q", "soft_update"},
    "dpmd_continuous_action.py": {"Batch", "min_q", "soft_update", "sample_actions", *CHAIN},
    "dacer_continuous_action.py": {"Batch", "soft_update", *CHAIN},
}


def algorithm_definitions(text: str) -> dict[str, str]:
    """Source of each top-level function and class above train(), by name."""
    text = lesson(text)
    return {
        n.name: ast.get_source_segment(text, n)
        for n in ast.parse(text).body
        if isinstance(n, (ast.FunctionDef, ast.ClassDef))
    }


def drifted_copies(text: str, other_text: str, own: frozenset = frozenset()) -> tuple[list[str], list[str]]:
    """The pieces both scripts define (but those that differ on purpose), and those of them that differ."""
    ours, theirs = algorithm_definitions(text), algorithm_definitions(other_text)
    shared = sorted(set(ours) & set(theirs) - DIFFER_ON_PURPOSE - own)
    return shared, [n for n in shared if ours[n] != theirs[n]]


@pytest.mark.parametrize("other", SCRIPTS[1:])
def test_algorithm_pieces_that_two_scripts_share_are_identical(other):
    """DPMD copies SDAC's schedule, networks, sampler and more; DACER its schedule, noise network and reverse chain;
    SAC copies Batch, min_q and soft_update (COPIED). A copy that drifts is a bug in one of them: every function or
    class both define is the same, but those that differ on purpose (DIFFER_ON_PURPOSE, OWN)."""
    shared, drifted = drifted_copies(read(SCRIPTS[0]), read(other), OWN.get(other, frozenset()))
    assert COPIED[other] <= set(shared)
    assert not drifted, f"{other} and {SCRIPTS[0]} define these differently: {drifted}"


def test_the_shared_pieces_check_would_catch_a_drift():
    dpmd = read(SCRIPTS[2])
    old = "x0_hat = ((x - sqrt_one_minus_abar * eps)"
    assert old in dpmd
    drifted = dpmd.replace(old, "x0_hat = ((x - sqrt_one_minus_abar**2 * eps)")
    assert drifted_copies(read(SCRIPTS[0]), drifted)[1] == ["reverse_diffusion"]


def test_one_formatter_and_no_escapes():
    """The repository is as ruff (configured in pyproject.toml) formats it, and no line of it escapes the formatter."""
    python_files = [*SCRIPTS, "rssm_toy_gmm.py"]
    python_files += [os.path.join(d, f) for d in ("tests", "benchmarks") for f in os.listdir(os.path.join(REPO, d))]
    for name in [f for f in python_files if f.endswith(".py") and f != os.path.join("tests", "test_plumbing.py")]:
        escape = "fmt: " + "skip"  # (spelled apart, so that this file does not hold it)
        assert escape not in read(name) and "fmt: off" not in read(name), name
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "."], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
