# syntax=docker/dockerfile:1

# BMS container image.
#
#   docker build -t bms .
#   docker run --rm -p 8000:8000 --env-file env/bms.env bms
#
# The same image runs every process role; pick one with the command:
#   bms serve | bms migrate | bms worker | bms scheduler | bms createuser ...
# compose.yaml wires them together with PostgreSQL and Redis.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
# builder: install BMS and its dependencies into a self-contained venv
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so this layer stays cached
# until the dependency list changes (not on every source edit).
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project itself (non-editable, so the venv does not need /src).
COPY api/ api/
COPY realtime/ realtime/
COPY tasks/ tasks/
COPY domain/ domain/
COPY db/ db/
COPY bms/ bms/
RUN pip install --no-deps . \
    && cd / && python -c "import api, bms, db, domain, realtime, tasks" \
    && test -x /opt/venv/bin/bms

# ---------------------------------------------------------------------------
# runtime: slim image with the venv, running as an unprivileged user
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:$PATH" \
    BMS_DATA_DIR=/var/lib/bms

# pg_dump/pg_restore for `bms backup` and `bms restore` (they must be at least the server's
# major version: Debian bookworm ships 15; set PG_CLIENT_PACKAGE for a newer PGDG client).
ARG PG_CLIENT_PACKAGE=postgresql-client
RUN apt-get update \
    && apt-get install -y --no-install-recommends ${PG_CLIENT_PACKAGE} \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 bms \
    && useradd --system --uid 10001 --gid bms \
        --home-dir /var/lib/bms --no-create-home --shell /usr/sbin/nologin bms \
    && mkdir -p /var/lib/bms \
    && chown bms:bms /var/lib/bms \
    && chmod 0750 /var/lib/bms

# Same base image and same path as in the builder, so the venv's interpreter
# symlinks and console-script shebangs stay valid.
COPY --from=builder /opt/venv /opt/venv

WORKDIR /var/lib/bms
USER bms:bms

EXPOSE 8000

# Only meaningful for `bms serve`; compose.yaml disables it for the other roles.
# urllib raises on connection errors and non-2xx answers, so any failure exits 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["bms", "serve", "--host", "0.0.0.0", "--port", "8000"]
