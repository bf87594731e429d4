# tiprelay: the relay's container image. docs/operators.md tells how to run it.
#
#   docker build -t tiprelay .
#   docker build --build-arg DEBIAN_IMAGE=debian:bookworm-slim@sha256:<digest> \
#     --build-arg GIT_COMMIT="$(git rev-parse HEAD)" -t tiprelay .
#
# It needs BuildKit (Docker >= 23 uses it by default; older: DOCKER_BUILDKIT=1).
# Behind a TLS-inspecting proxy, hand the build your CA bundle as a build
# secret; it is used by npm and pip and never stored in a layer:
#   docker build --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt -t tiprelay .
#
# Two stages: `build` makes the browser bundle (with the Node.js release pinned
# in pyproject.toml, from package-lock.json) and a venv with tiprelay and
# exactly the Python packages of requirements/runtime.txt (pinned, hashed:
# scripts/lock refreshes it), the dependencies in layers of their own that a
# rebuild reuses while the locks stay the same; the runtime stage has only
# Debian's python3 and that venv. Nothing secret is in the image: reviewers'
# public keys are mounted at /keys, the settings at /config (both read-only),
# and ciphertext lives on the /data volume. The root file system can be, and
# in docker-compose.yml is, read-only.

# The base image; pin it by digest in production (see docs/operators.md).
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false

# Versions are not pinned on purpose: the base image fixes the Debian release,
# and its security updates must flow in on every rebuild. This stage is thrown
# away, so dpkg may skip its fsyncs. Node.js is not Debian's (see
# scripts/install-node): the pinned release comes from PyPI below.
# hadolint ignore=DL3008
RUN echo force-unsafe-io >/etc/dpkg/dpkg.cfg.d/build-stage-unsafe-io \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

# The dependencies first, each in a layer that depends only on the locks and
# the scripts that install them, so a rebuild after a change to tiprelay's own
# code reuses them: the relay's venv gets exactly requirements/runtime.txt,
# a throwaway build venv requirements/build.txt (hatchling) and the pinned
# Node.js (scripts/install-lock: pip itself from the lock first, every file
# checked against the lock's hashes, nothing resolved afresh, then pip check),
# and npm installs package-lock.json. The venv lives at the path it runs from
# (its scripts name their interpreter).
WORKDIR /src
COPY pyproject.toml package.json package-lock.json ./
COPY requirements/ requirements/
COPY scripts/install-lock scripts/install-locked scripts/install-node scripts/
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && python3 -m venv /opt/tiprelay \
    && bash scripts/install-lock /opt/tiprelay requirements/runtime.txt
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then \
        export npm_config_cafile=/run/secrets/ca_bundle PIP_CERT=/run/secrets/ca_bundle; \
    fi \
    && python3 -m venv /tmp/build-venv \
    && bash scripts/install-lock /tmp/build-venv requirements/build.txt \
    && bash scripts/install-node /tmp/build-venv \
    && PATH=/tmp/build-venv/bin:$PATH npm ci --loglevel=error

# Then tiprelay itself, from the bind-mounted build context copied beside
# node_modules: esbuild makes the browser bundle (relay/web/static/dist/),
# hatchling the wheel, which goes into the relay's venv with nothing more
# (--no-deps). pip and setuptools leave the venv, since nothing installs at run
# time. Only /opt/tiprelay is kept.
# hadolint ignore=DL3003
RUN --mount=type=bind,target=/context \
    tar -C /context --exclude=./node_modules --create --file - . | tar -C /src --extract --file - \
    && PATH=/tmp/build-venv/bin:$PATH bash scripts/build-js \
    && /tmp/build-venv/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
    && /opt/tiprelay/bin/pip install --no-deps /tmp/wheels/tiprelay-*.whl \
    && /opt/tiprelay/bin/pip uninstall -y -q pip setuptools \
    && /opt/tiprelay/bin/python docker/relay/trim_venv.py

FROM ${DEBIAN_IMAGE}
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]

# The commit the image says it was built from (a claim, not a proof: the
# operator's guide tells how to check it against a checkout of that commit).
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.revision=${GIT_COMMIT}

# A fixed, unprivileged id, so the owner of the /data volume is the same on
# every build and can be set on a host folder (chown 10001:10001).
# gpg (the binary alone: no agent, no dirmngr) wraps no-JS tips' file keys to
# OpenPGP reviewers.
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3 gpg \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tiprelay \
    && useradd --system --uid 10001 --gid tiprelay --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin tiprelay \
    && install -d -o tiprelay -g tiprelay -m 0700 /data \
    && install -d -m 0755 /config /keys

COPY --from=build /opt/tiprelay /opt/tiprelay
COPY docker/relay/entrypoint.sh /usr/local/bin/tiprelay-entrypoint

ENV PATH=/opt/tiprelay/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
# urllib raises on a refused connection or a non-2xx answer: exit status 1.
# The port follows TIPRELAY_PORT when an operator moves it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TIPRELAY_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["tiprelay-entrypoint"]
