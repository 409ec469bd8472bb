"""evdsearch: procedurally generated shapes world, CLIP / rewriter / description-set training."""
