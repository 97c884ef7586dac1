#!/usr/bin/env bash
# Build an image of the project with buildah (what the tests and `make`-less operators run).
#   usage: docker/build.sh api|train [TAG]      (default tag localhost/upvote-<kind>:dev)
# Works offline from Docker Hub: builds the python:3.11-slim stand-in first (docker/build-base.sh).
# Uses the local CPU torch wheel from /opt/wheels (or $TORCH_WHEEL_DIR) when there is one,
# else the PyTorch CPU index; passes the host CA bundle to pip as a build secret (never stored).
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:?usage: docker/build.sh api|train [TAG]}"
tag="${2:-localhost/upvote-$kind:dev}"
docker/build-base.sh localhost/python:3.11-slim
args=(--isolation chroot --layers --format docker -f "docker/$kind.Dockerfile" -t "$tag")
wheel="$(ls "${TORCH_WHEEL_DIR:-/opt/wheels}"/torch-2.13.0+cpu-cp311-*.whl 2>/dev/null | head -1 || true)"
if [ -n "$wheel" ]; then
  ln -f "$wheel" docker/wheels/ 2>/dev/null || cp -u "$wheel" docker/wheels/
  args+=(--build-arg TORCH_INDEX=)
fi
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] && args+=(--secret "id=ca,src=$ca")
buildah bud "${args[@]}" .
