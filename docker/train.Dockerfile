# One-shot training job: trains a model and writes a new version into the registry in /data.
#   buildah bud -f docker/train.Dockerfile -t upvote-train .   (or: docker build -f ... .)
# Same first layers as api.Dockerfile, so the two images share them.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN --mount=type=bind,source=docker/wheels,target=/wheels \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    pip install --find-links /wheels ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} "torch==2.13.0"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    pip install . && rm -rf /app/src

RUN useradd --system --uid 10001 --create-home app \
    && mkdir -p /data \
    && chown app:app /data
USER app

ENV UPVOTE_DATA_DIR=/data
VOLUME ["/data"]
CMD ["upvote", "train"]
