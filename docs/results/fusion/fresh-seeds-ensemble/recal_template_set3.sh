#!/usr/bin/env bash
# Set 3's template KBs were calibrated before the fit-as-prior rule landed: calibrate them again with it.
# Usage: recal_template_set3.sh SEED   (world root $SEEDS/sSEED, SEEDS defaults to runs/seeds in the checkout)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../../.." && pwd)
R=${SEEDS:-$REPO/runs/seeds}/s${1:?seed}; F=$R/fusion
rm -f "$F/.kb_t.calibrated" "$F/.kb_tv.calibrated"
"$REPO/scripts/adaptive_fusion_world.sh" "$R" calibrate
echo "template recal $1 done $(date)"
