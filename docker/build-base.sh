#!/usr/bin/env bash
# Build a local stand-in for Docker Hub's python:3.11-slim, for machines that cannot reach Docker Hub.
#
# Debian bookworm's python3 is 3.11, so a minimal bookworm root file system with python3 and pip,
# laid out like the official image (python/pip on PATH, no PEP 668 lock), lets the project's
# Dockerfiles build unchanged. Skips the work if the image already exists (it is the cache).
#   usage: docker/build-base.sh [IMAGE]   (default localhost/python:3.11-slim)
set -euo pipefail
image="${1:-localhost/python:3.11-slim}"
if podman image exists "$image"; then
  echo "base image $image already present"
  exit 0
fi
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root="$(mktemp -d /var/tmp/python-slim.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates,curl \
  bookworm "$root" "$mirror"
rm -f "$root"/usr/lib/python3.11/EXTERNALLY-MANAGED
ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
tar -C "$root" -c . | podman import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$image"
echo "built $image"
