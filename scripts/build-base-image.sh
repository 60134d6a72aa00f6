#!/usr/bin/env bash
# Build a local base image for the agent image from Debian packages, without a registry.
#
# For CI and offline machines only: there, no image registry is reachable, so the usual
# BASE_IMAGE (python:3.11-slim) cannot be pulled.  Users with a registry never need this.
#
#   scripts/build-base-image.sh [--force] [--tag TAG]
#
# debootstrap (minbase) + python3, python3-venv, passwd (useradd), ca-certificates, git,
# with this host's CA bundle copied in (pip inside the image build then trusts whatever
# authority this network's package registries present), then `docker import`.  Skips the
# work when TAG already exists, unless --force.  Needs root, debootstrap and a running
# Docker engine.  Env: SUITE (bookworm), MIRROR (http://deb.debian.org/debian).
# Then: jupyter agcluster build-image --base-image agcluster-base:bookworm --network host
set -euo pipefail

TAG=agcluster-base:bookworm
FORCE=0
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,passwd,ca-certificates,git
HOST_CA=/etc/ssl/certs/ca-certificates.crt

while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --tag) TAG=${2:?--tag needs a value}; shift ;;
    --tag=*) TAG=${1#--tag=} ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-base-image: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "== build-base-image: $*"; }
die() { echo "build-base-image: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install -y debootstrap)"
docker info >/dev/null 2>&1 || die "cannot reach Docker (start dockerd or set DOCKER_HOST)"

if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG exists, skipping (--force rebuilds it)"
  exit 0
fi

start=$(date +%s)
ROOTFS=$(mktemp -d /var/tmp/agcluster-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT

say "debootstrap --variant=minbase $SUITE ($PACKAGES) from $MIRROR into $ROOTFS"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
  > "$ROOTFS.log" 2>&1 || { tail -n 30 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; die "debootstrap failed"; }
rm -f "$ROOTFS.log"

if [ -f "$HOST_CA" ]; then
  say "copying this host's CA bundle ($HOST_CA) into the image"
  cp "$HOST_CA" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
else
  say "no $HOST_CA on this host: the image keeps Debian's own CA bundle"
fi

say "trimming apt caches, docs and man pages"
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* \
  "$ROOTFS"/usr/share/info/* "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/log/*.log
# what a container runtime provides itself
rm -rf "$ROOTFS"/dev/* "$ROOTFS"/proc/* "$ROOTFS"/sys/*

say "docker import as $TAG"
tar -C "$ROOTFS" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.agcluster.base=debootstrap-$SUITE" \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap --variant=minbase $SUITE + $PACKAGES" \
  - "$TAG" >/dev/null

size=$(docker image inspect --format '{{.Size}}' "$TAG")
say "built $TAG ($((size / 1024 / 1024)) MiB) in $(( $(date +%s) - start )) s"
