#!/bin/bash
# EX2 with the contrastive reward on all 95 concepts of the development world s0 (../ex2.sh holds the shared
# settings and the paths). Worlds under $SEEDS, default runs/seeds in the checkout.
exec "$(dirname "$0")/../ex2.sh" ex2-c --steps 96
