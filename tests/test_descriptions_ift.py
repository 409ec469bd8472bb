"""IFT: TracIn on a 2-point linear model against the hand computation, top-k selection, score mixing."""

from __future__ import annotations

import numpy as np

from evdsearch.training.descriptions.ift import ift_scores, selection_weights, text_influence, top_k, zscore
from evdsearch.training.descriptions.tracin import Checkpoint, residuals, sgd_epochs, tracin


def test_tracin_two_points_equals_hand_computation() -> None:
    # Two classes, 1-D inputs; one checkpoint at W = 0, b = 0 (softmax = [0.5, 0.5]).
    x_tr, y_tr = np.array([[2.0]]), np.array([0])
    x_va, y_va = np.array([[1.0]]), np.array([0])
    ck = Checkpoint(W=np.zeros((2, 1)), b=np.zeros(2), lr=0.1)
    # By hand: g = p - onehot = [-0.5, 0.5] for both; ∇_W = g xᵀ, ∇_b = g.
    # ∇W·∇W' = (g·g')(x x') = 0.5 * 2 = 1.0; ∇b·∇b' = g·g' = 0.5; total 1.5; times lr 0.1 = 0.15.
    np.testing.assert_allclose(tracin([ck], x_tr, y_tr, x_va, y_va), [[0.15]])
    # A second checkpoint with W = [[1], [0]]: logits on x_tr = [2, 0], on x_va = [1, 0].
    ck2 = Checkpoint(W=np.array([[1.0], [0.0]]), b=np.zeros(2), lr=0.05)
    p_tr = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
    p_va = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()
    g_tr, g_va = p_tr - [1, 0], p_va - [1, 0]
    by_hand = 0.15 + 0.05 * (g_tr @ g_va) * (2.0 * 1.0 + 1.0)
    np.testing.assert_allclose(tracin([ck, ck2], x_tr, y_tr, x_va, y_va), [[by_hand]])


def test_tracin_matches_autograd_gradients() -> None:
    import torch

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(3, 4)), np.array([0, 1, 2])
    ck = Checkpoint(W=rng.normal(size=(3, 4)), b=rng.normal(size=3), lr=0.3)

    def grad(i: int) -> np.ndarray:
        W = torch.tensor(ck.W, requires_grad=True)
        b = torch.tensor(ck.b, requires_grad=True)
        loss = torch.nn.functional.cross_entropy((torch.tensor(X[i : i + 1]) @ W.T + b), torch.tensor(y[i : i + 1]))
        loss.backward()
        return np.concatenate([W.grad.numpy().ravel(), b.grad.numpy()])

    expected = 0.3 * np.array([[grad(i) @ grad(j) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(tracin([ck], X, y, X, y), expected, rtol=1e-6)


def test_sgd_lowers_the_loss_and_residuals_sum_to_zero() -> None:
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([0, 1])
    start = Checkpoint(np.zeros((2, 2)), np.zeros(2), 1.0)
    ckpts = sgd_epochs(start, X, y, 5, 1.0, 2, np.random.default_rng(0))
    assert len(ckpts) == 5
    np.testing.assert_allclose(residuals(start, X, y).sum(axis=1), 0.0, atol=1e-12)
    assert residuals(ckpts[-1], X, y)[np.arange(2), y].max() > -0.5  # true-class prob above 0.5


def test_top_k_is_best_first_with_stable_ties() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9, -1.0])
    assert top_k(scores, 3).tolist() == [1, 3, 2]
    assert top_k(scores, 10).tolist() == [1, 3, 2, 0, 4]


def test_ift_weight_mixes_standardised_scores() -> None:
    influence, similarity = np.array([3.0, 1.0, 2.0]), np.array([0.1, 0.3, 0.2])
    np.testing.assert_allclose(ift_scores(influence, similarity, 1.0), zscore(influence))
    np.testing.assert_allclose(ift_scores(influence, similarity, 0.0), zscore(similarity))
    assert top_k(ift_scores(influence, similarity, 1.0), 1)[0] == 0
    assert top_k(ift_scores(influence, similarity, 0.0), 1)[0] == 1
    np.testing.assert_allclose(zscore(np.ones(3)), 0.0)
    np.testing.assert_allclose(selection_weights(np.array([0.0, 0.0])), [1.0, 1.0])


def test_text_influence_follows_the_nearest_image() -> None:
    images = np.array([[1.0, 0.0], [0.0, 1.0]])
    influence = np.array([5.0, -5.0])
    texts = np.array([[1.0, 0.0], [0.0, 1.0]])
    out = text_influence(texts, images, influence, tau=0.01)
    np.testing.assert_allclose(out, [5.0, -5.0], atol=1e-6)
