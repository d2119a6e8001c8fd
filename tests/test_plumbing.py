"""The RL scripts share their plumbing line for line, so that a diff of any two (sdac_, sac_, dpmd_continuous_action.py)
shows only the algorithm, and the copies cannot drift apart again. Each script reads in the order a learner needs:
arguments, the algorithm, the training loop, then the plumbing."""

import difflib
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["sdac_continuous_action.py", "sac_continuous_action.py", "dpmd_continuous_action.py"]
RULE = "# " + "=" * 117
SECTIONS = ["class Args:", RULE + "\n# The algorithm:", RULE + "\n# Training loop", "\ndef train(", RULE + "\n# Plumbing:"]


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
        pytest.fail("the plumbing differs between the scripts (edit all, or move the line above the plumbing):\n"
                    + "\n".join(list(diff)[:40]))  # fmt: skip
    assert len(sdac.splitlines()) > 300, "the plumbing section holds envs, replay, checkpoints, evaluation, logging"


def test_the_check_would_catch_a_drift():
    text = read(SCRIPTS[0])
    drifted = text.replace("def final_observations(", "def final_observation(")
    assert plumbing(drifted) != plumbing(text)
