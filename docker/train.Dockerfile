# One-shot training job: trains a model and writes a new version into the registry in /data.
#   buildah bud -f docker/train.Dockerfile -t upvote-train .   (or: docker build -f ... .)
# Same first layers as api.Dockerfile, so the two images share them.
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

ENV UPVOTE_DATA_DIR=/data
VOLUME ["/data"]
CMD ["upvote", "train"]
