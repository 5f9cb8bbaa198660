#!/usr/bin/env bash
# Renders an SVG picture of retentiond (plan --svg, simulate --svg) to PNG with headless
# Chromium, to look at it as a person would: tools/render-svg.sh PICTURE.svg [OUT.png].
# Needs Debian's `chromium` package (apt-get install chromium).
set -euo pipefail
svg=$1
png=${2:-${svg%.svg}.png}
width=$(grep -o 'width="[0-9.]*"' "$svg" | head -1 | grep -o '[0-9.]*')
height=$(grep -o 'height="[0-9.]*"' "$svg" | head -1 | grep -o '[0-9.]*')
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size="${width%.*},${height%.*}" --screenshot="$png" "file://$(realpath "$svg")" 2>/dev/null
echo "$png"
