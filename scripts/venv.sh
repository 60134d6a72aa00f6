# Sourced by run.sh and run_tests.sh: picks and fills the virtualenv ($VENV).
#
# The claude CLI runs as an unprivileged user when we are root, and it lives inside the
# venv (claude-agent-sdk bundles it), so the venv must sit where that user can reach it.
venv_reachable() {
  local dir
  dir=$(cd "$1" && pwd)
  while [ "$dir" != "/" ]; do
    [ "$(( 0$(stat -c %a "$dir") & 1 ))" -eq 1 ] || return 1
    dir=$(dirname "$dir")
  done
}

if [ -z "${VENV:-}" ]; then
  VENV="$PWD/.venv"
  if [ "$(id -u)" = 0 ] && ! venv_reachable "$PWD"; then
    VENV=/opt/agcluster-venv
  fi
fi
export VENV
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
