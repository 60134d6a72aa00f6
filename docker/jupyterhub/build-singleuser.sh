#!/usr/bin/env bash
# Build the single-user server image (Dockerfile.singleuser) from this checkout.
#
#   docker/jupyterhub/build-singleuser.sh [--base-image IMG] [--tag TAG] [--network NET]
#                                         [--extra kubernetes] [--python PY]
#
# Assembles the build context in a temporary folder: the agcluster-jupyter wheel (built
# with `pip wheel`; the labextension must be built already, as in any checkout where
# `pip install -e .` ran, so no Node.js is needed) and requirements.txt: the wheel's
# dependencies, jupyterhub and jupyterlab, each pinned to the version PY has installed when
# that satisfies it (the hub's machine: its jupyterhub must match the hub's).  Then
# `docker build`; the dependency layer stays cached until requirements.txt changes.
#
#   --base-image  BASE_IMAGE build arg (default: quay.io/jupyter/base-notebook:latest)
#   --tag         image tag (default: agcluster-singleuser:latest)
#   --network     network of the build's RUN steps, e.g. host
#   --extra       an extra of agcluster-jupyter to install too (kubernetes), repeatable
#   --python      the Python that builds the wheel and whose versions pin (default: python3)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BASE_IMAGE=""
TAG=agcluster-singleuser:latest
NETWORK=""
EXTRAS=()
PYTHON=${PYTHON:-python3}

while [ $# -gt 0 ]; do
  case "$1" in
    --base-image) BASE_IMAGE=${2:?--base-image needs a value}; shift ;;
    --tag) TAG=${2:?--tag needs a value}; shift ;;
    --network) NETWORK=${2:?--network needs a value}; shift ;;
    --extra) EXTRAS+=("${2:?--extra needs a value}"); shift ;;
    --python) PYTHON=${2:?--python needs a value}; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-singleuser: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "build-singleuser: $*" >&2; exit 1; }
[ -f "$REPO/agcluster_jupyter/labextension/static/style.js" ] ||
  die "the labextension is not built in $REPO (pip install -e . there builds it, with Node.js)"

CONTEXT=$(mktemp -d /tmp/agcluster-singleuser.XXXXXX)
trap 'rm -rf "$CONTEXT"' EXIT

"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$CONTEXT" "$REPO"
cp "$HERE/Dockerfile.singleuser" "$CONTEXT/Dockerfile"

"$PYTHON" - "$CONTEXT" "${EXTRAS[@]}" <<'EOF'
import sys, zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

context, extras = Path(sys.argv[1]), set(sys.argv[2:])
(wheel,) = context.glob("*.whl")
with zipfile.ZipFile(wheel) as zf:
    name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
    requires = Parser().parsestr(zf.read(name).decode()).get_all("Requires-Dist") or []
lines = []
for raw in [*requires, "jupyterhub>=5", "jupyterlab>=4.2,<5"]:
    req = Requirement(raw)
    if req.marker is not None and "extra" in str(req.marker):
        env = default_environment()
        if not any(req.marker.evaluate({**env, "extra": e}) for e in extras):
            continue
        req.marker = None  # the image's pip evaluates the other markers itself
    marker = f"; {req.marker}" if req.marker is not None else ""
    try:
        installed = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        installed = None
    pinned = installed is not None and req.specifier.contains(installed, prereleases=True)
    lines.append(f"{req.name}=={installed}{marker}" if pinned else str(req))
(context / "requirements.txt").write_text("\n".join(sorted(lines, key=str.lower)) + "\n")
EOF

args=(build --file "$CONTEXT/Dockerfile" --tag "$TAG")
[ -n "$BASE_IMAGE" ] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
[ -n "$NETWORK" ] && args+=(--network "$NETWORK")
echo "== build-singleuser: $TAG from ${BASE_IMAGE:-the default base}"
docker "${args[@]}" "$CONTEXT"
