# The upvote HTTP service: API, web page and metrics on port 8000, serving the registry in /data.
#   buildah bud -f docker/api.Dockerfile -t upvote-api .   (or: docker build -f ... .)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Runs as this unprivileged user (numeric in USER below); same layers in both images.
RUN useradd --system --uid 10001 --create-home app \
    && mkdir -p /data /var/log/app \
    && chown app:app /data /var/log/app

# CPU-only PyTorch in its own layer (the biggest, changes least). It comes from the PyTorch CPU
# index; a build machine without that index puts torch-2.13.0+cpu-*.whl into docker/wheels/ and
# passes --build-arg TORCH_INDEX= . A proxy CA for pip can be given as the secret "ca"; secrets
# are mounted only for this step and never stored in the image.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN --mount=type=bind,source=docker/wheels,target=/wheels \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    PIP_EXTRA_INDEX_URL="$TORCH_INDEX" pip install --find-links /wheels torch==2.13.0

# Dependencies in their own layer (rebuilt only when pyproject.toml changes): install the
# project once as an empty package to get them, then the real code without touching them.
# The "jobs" extra (Procrastinate, pure Python) lets the image run `upvote jobs` (compose's
# embeddings profile): the worker, `upvote jobs init` and the jobs API. DL3013: the local project
# with an extra, its dependencies bounded by pyproject.toml, is no package to pin.
WORKDIR /app
COPY pyproject.toml README.md ./
# hadolint ignore=DL3013
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    mkdir -p src/upvote && touch src/upvote/__init__.py \
    && pip install ".[jobs]" && pip uninstall --yes upvote && rm -rf src
COPY src ./src
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    pip install --no-deps . && rm -rf /app/src

USER 10001

ARG RELEASE=dev
ENV UPVOTE_DATA_DIR=/data \
    UPVOTE_LOG_DIR=/var/log/app \
    UPVOTE_HOST=0.0.0.0 \
    UPVOTE_PORT=8000 \
    UPVOTE_RELEASE=${RELEASE}
VOLUME ["/var/log/app"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['UPVOTE_PORT']}/health\", timeout=2)"]
CMD ["upvote", "serve"]
