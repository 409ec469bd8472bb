#!/bin/bash
# EX2 with the contrastive reward and concept names masked, all 95 concepts of the development world s0
# (../ex2.sh holds the shared settings and the paths). Worlds under $SEEDS, default runs/seeds.
exec "$(dirname "$0")/../ex2.sh" ex2-m --mask-names --beta 0.1 --lr 1e-3 --steps 128
