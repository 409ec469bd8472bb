#!/usr/bin/env bash
# Set 3's template KBs were calibrated before the fit-as-prior rule landed: calibrate them again with it.
set -euo pipefail
s=$1; F=/work/seeds/s$s/fusion
rm -f $F/.kb_t.calibrated $F/.kb_tv.calibrated
/work/main/scripts/adaptive_fusion_world.sh /work/seeds/s$s calibrate
echo "template recal $s done $(date)"
