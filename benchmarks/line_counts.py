"""How an RL script reads, in counts (issue 37): lines per section (header, Args, algorithm, train(), plumbing),
docstring lines, the formatter's per-line escapes, lines over 120 characters, top-level definitions; SDAC's update path (the lines of
every callable one update runs, from the loop's call down); and train()'s plumbing names and the attributes of
plumbing objects it reads.

    python benchmarks/line_counts.py sdac_continuous_action.py dpmd_continuous_action.py sac_continuous_action.py \
        dacer_continuous_action.py
    git show 9ef71b3:sdac_continuous_action.py > /tmp/before.py && python benchmarks/line_counts.py /tmp/before.py
"""

import ast
import sys

R = "# " + "=" * 117
ESCAPE = "fmt: " + "skip"  # (spelled apart, so that this file does not hold it)
UPDATE_PATH = [
    "ReplayBuffer.sample",
    "ReplayBuffer.fields",
    "Batch",
    "make_update",
    "set_lr",
    "policy_lr_at",
    "make_policy",
    "sample_actions",
    "reverse_diffusion",
    "NoiseNetwork.forward",
    "TimeEmbedding.forward",
    "min_q",
    "TwinQNetwork.forward",
    "BatchedLinear.forward",
    "exploration_entropy",
    "rssm_loss",
    "reverse_sample",
    "effective_sample_size",
    "soft_update",
    "FiniteCheck.watch",
]


def sections(text: str) -> dict:
    def line(marker):
        return text[: text.index(marker)].count("\n") + 1

    a, b, c, d = (
        line(m) for m in ("class Args:", R + "\n# The algorithm", R + "\n# Training loop", R + "\n# Plumbing:")
    )
    n = len(text.splitlines())
    return dict(total=n, header=a - 1, args=b - a, algorithm=c - b, train=d - c, plumbing=n - d + 1)


def definitions(tree) -> dict:
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = node
            for sub in node.body if isinstance(node, ast.ClassDef) else []:
                if isinstance(sub, ast.FunctionDef):
                    out[f"{node.name}.{sub.name}"] = sub
    return out


def train_names(text: str, tree) -> tuple[list, list]:
    plumbing = {n.name for n in ast.parse(text[text.index(R + "\n# Plumbing:") :]).body if hasattr(n, "name")}
    train = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train")
    names = {n.id for n in ast.walk(train) if isinstance(n, ast.Name)}
    objects = {
        t.id
        for n in ast.walk(train)
        if isinstance(n, ast.Assign)
        and isinstance(n.value, ast.Call)
        and isinstance(n.value.func, ast.Name)
        and n.value.func.id in plumbing
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    attrs = {
        f"{n.value.id}.{n.attr}"
        for n in ast.walk(train)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in objects
    }
    return sorted(names & plumbing), sorted(attrs)


for path in sys.argv[1:]:
    text = open(path).read()
    tree = ast.parse(text)
    bodies = [node.body for node in ast.walk(tree) if isinstance(getattr(node, "body", None), list)]
    strings = [st for body in bodies for st in body if isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant)]
    docstrings = sum(st.end_lineno - st.lineno + 1 for st in strings if isinstance(st.value.value, str))
    defs = definitions(tree)
    on_path = [n for n in UPDATE_PATH if n in defs]
    names, attrs = train_names(text, tree)
    print(path, sections(text))
    print(
        f"  docstring lines {docstrings}, formatter escapes {text.count(ESCAPE)}, lines > 120 "
        f"{sum(len(x) > 120 for x in text.splitlines())}, top-level definitions "
        f"{sum(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body)}"
    )
    if "make_policy" in defs and "rssm_loss" in defs:
        print(
            f"  SDAC's update path: {len(on_path)} callables, {sum(defs[n].end_lineno - defs[n].lineno + 1 for n in on_path)} lines"
        )
    print(f"  train(): {len(names)} plumbing names {names}; {len(attrs)} attributes of plumbing objects {attrs}")
