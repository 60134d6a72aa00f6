#!/usr/bin/env bash
# Install and start JupyterLab with agcluster.  Without ANTHROPIC_API_KEY it starts in
# demo mode: a built-in scripted model plays Claude, so everything works offline.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/venv.sh
# the package, JupyterLab and ipykernel (the `lab` extra), what the example notebooks
# import (the `examples` extra)
"$VENV/bin/pip" install --quiet -e '.[lab,examples]'
args=()
if [ -z "${ANTHROPIC_API_KEY:-}" ]; then
  echo "ANTHROPIC_API_KEY is not set: starting in DEMO MODE (replies are scripted)"
  args+=(--AgClusterApp.demo_mode=True)
fi
[ "$(id -u)" = 0 ] && args+=(--allow-root)
# A known port and token, so the REST API works with curl (README: "Quick start with
# curl"): $JUPYTER_PORT (default 8888, no retries: the URL below is the server's, or it
# does not start) and $JUPYTER_TOKEN (default: a new random one).
export JUPYTER_PORT="${JUPYTER_PORT:-8888}" JUPYTER_PORT_RETRIES=0
if [ -z "${JUPYTER_TOKEN:-}" ]; then
  JUPYTER_TOKEN=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(24))')
fi
export JUPYTER_TOKEN
api="http://127.0.0.1:$JUPYTER_PORT/api/agcluster"
echo "agcluster API: $api/  token: $JUPYTER_TOKEN"
echo "  for curl: export API=$api AUTH='Authorization: token $JUPYTER_TOKEN'"
exec "$VENV/bin/jupyter" lab --no-browser "${args[@]}" "$@"
