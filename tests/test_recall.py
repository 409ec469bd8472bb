"""Recall@K against hand-computed values (CLIP_benchmark definition)."""

from __future__ import annotations

import numpy as np
import pytest

from evdsearch.evaluation.recall import recall_at_k


def test_recall_three_images_by_hand() -> None:
    # 3 images on the axes; 6 captions, 2 per image (owners below).
    images = np.eye(3, dtype=np.float32)
    texts = np.array([
        [1.0, 0.0, 0.0],   # cap0 of img0 -> img0 first                      (t2i rank 0)
        [0.1, 0.9, 0.0],   # cap1 of img0 -> img1, img0                      (rank 1)
        [0.0, 1.0, 0.0],   # cap2 of img1 -> img1                            (rank 0)
        [0.0, 0.2, 0.8],   # cap3 of img1 -> img2, img1                      (rank 1)
        [0.7, 0.0, 0.3],   # cap4 of img2 -> img0, img2                      (rank 1)
        [0.6, 0.4, 0.0],   # cap5 of img2 -> img0, img1, img2                (rank 2)
    ], dtype=np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    owners = [0, 0, 1, 1, 2, 2]
    result = recall_at_k(texts, images, owners, ks=(1, 2, 3))
    assert result["t2i"] == pytest.approx({1: 2 / 6, 2: 5 / 6, 3: 1.0})
    # i2t (scores of image rows against captions):
    #   img0: cap0 1.0 (own) is first                          -> rank 0
    #   img1: cap2 1.0 (own) beats cap1 .99                     -> rank 0
    #   img2: cap3 .97 (img1's) beats its own best cap4 .39     -> rank 1
    assert result["i2t"] == pytest.approx({1: 2 / 3, 2: 1.0, 3: 1.0})
    # Keep cap0, cap1, cap2, cap5: img2's only caption cap5 scores 0 and ties with cap0..cap2;
    # ties count against the query -> rank 3.
    keep = [0, 1, 2, 5]
    result = recall_at_k(texts[keep], images, [owners[i] for i in keep], ks=(1, 3, 4))
    assert result["i2t"] == pytest.approx({1: 2 / 3, 3: 2 / 3, 4: 1.0})


def test_recall_blockwise_matches_dense() -> None:
    from evdsearch.evaluation.recall import image_to_text_ranks, text_to_image_ranks

    rng = np.random.default_rng(0)
    texts = rng.normal(size=(53, 8)).astype(np.float32)
    images = rng.normal(size=(11, 8)).astype(np.float32)
    owners = rng.integers(0, 11, size=53)
    dense = text_to_image_ranks(texts, images, owners, block=1000)
    assert np.array_equal(dense, text_to_image_ranks(texts, images, owners, block=7))
    assert np.array_equal(image_to_text_ranks(texts, images, owners, block=1000),
                          image_to_text_ranks(texts, images, owners, block=3))
    # dense reference for t2i
    scores = texts @ images.T
    ref = (scores >= scores[np.arange(53), owners][:, None]).sum(1) - 1
    assert np.array_equal(dense, ref)
