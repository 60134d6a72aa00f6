#!/usr/bin/env bash
# Install and start JupyterLab with agcluster.  Without ANTHROPIC_API_KEY it starts in
# demo mode: a built-in scripted model plays Claude, so everything works offline.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/venv.sh
"$VENV/bin/pip" install --quiet -e . jupyterlab
args=()
if [ -z "${ANTHROPIC_API_KEY:-}" ]; then
  echo "ANTHROPIC_API_KEY is not set: starting in DEMO MODE (replies are scripted)"
  args+=(--AgClusterApp.demo_mode=True)
fi
[ "$(id -u)" = 0 ] && args+=(--allow-root)
exec "$VENV/bin/jupyter" lab --no-browser "${args[@]}" "$@"
