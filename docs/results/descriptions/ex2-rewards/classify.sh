#!/bin/bash
# The classification table in classify.md: the two EX2 sets in this folder (made on the development world s0)
# against the class name, the 80 templates and 25 random words, on the fresh worlds 7301-7303 with their own CLIPs.
# usage: classify.sh [OUT]   (run from the checkout's root)
out=${1:-/work/seeds/r2/classify-ex2-cm}
here=docs/results/descriptions/ex2-rewards
exec evdsearch bench classify --data /work/seeds/s7301/world,/work/seeds/s7302/world,/work/seeds/s7303/world \
    --model /work/seeds/s7301/clip,/work/seeds/s7302/clip,/work/seeds/s7303/clip \
    --descriptions "classname,templates,waffle:25,$here/contrastive/ex2.jsonl,$here/masked/ex2.jsonl" \
    --out "$out" --cache-dir /work/seeds/s7301/desc/cache --threads 2
