"""PRO's listwise loss: the hand computation, its gradient direction, masking, and list picking."""

from __future__ import annotations

import math
import random

import pytest

torch = pytest.importorskip("torch")

from evdsearch.training.rewriter.pro import pick_list, pro_loss  # noqa: E402


def hand_pro(r: list[float]) -> float:
    """-sum_k log(exp(r_k) / sum_{j>=k} exp(r_j)), written out."""
    total = 0.0
    for k in range(len(r) - 1):
        total -= r[k] - math.log(sum(math.exp(x) for x in r[k:]))
    return total


def test_three_candidates_match_the_hand_computation() -> None:
    r = [-1.0, -2.5, -0.5]  # the policy currently likes the worst candidate best
    expected = -((-1.0 - math.log(math.exp(-1.0) + math.exp(-2.5) + math.exp(-0.5)))
                 + (-2.5 - math.log(math.exp(-2.5) + math.exp(-0.5))))
    assert hand_pro(r) == pytest.approx(expected)
    assert float(pro_loss(torch.tensor([r]))) == pytest.approx(expected, rel=1e-6)


def test_gradient_prefers_the_better_candidate() -> None:
    scores = torch.tensor([[-1.0, -2.5, -0.5]], requires_grad=True)
    pro_loss(scores).backward()
    grad = scores.grad[0]
    assert grad[0] < 0 < grad[2]  # descent raises y1's likelihood and lowers y3's
    with torch.no_grad():
        stepped = scores - 0.5 * scores.grad
    before, after = torch.softmax(scores.detach(), -1)[0, 0], torch.softmax(stepped, -1)[0, 0]
    assert after > before
    assert float(pro_loss(stepped)) < float(pro_loss(scores.detach()))


def test_batch_mean_and_padding_mask() -> None:
    rows = [[-1.0, -2.0, -3.0], [-0.2, -0.1, 0.0]]
    padded = torch.tensor([rows[0], [-0.2, -0.1, 99.0]])  # second row has only 2 real candidates
    mask = torch.tensor([[True, True, True], [True, True, False]])
    expected = (hand_pro(rows[0]) + hand_pro([-0.2, -0.1])) / 2
    assert float(pro_loss(padded, mask)) == pytest.approx(expected, rel=1e-6)
    single = torch.tensor([[-1.0, 5.0]])
    assert float(pro_loss(single, torch.tensor([[True, False]]))) == 0.0


def test_pick_list_keeps_the_best_and_the_order() -> None:
    candidates = [f"c{i}" for i in range(10)]
    picked = pick_list(candidates, 4, random.Random(0))
    assert picked[0] == "c0" and len(picked) == 4
    assert [candidates.index(c) for c in picked] == sorted(candidates.index(c) for c in picked)
    assert pick_list(candidates, 4, None) == ["c0", "c1", "c5", "c9"]
    assert pick_list(candidates[:3], 4, None) == candidates[:3]
