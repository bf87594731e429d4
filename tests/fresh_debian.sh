#!/usr/bin/env bash
# The README's promise, checked: on a fresh Debian 12 with nothing of ours
# installed, scripts/setup installs everything, and the suite runs.
#
#   bash tests/fresh_debian.sh [PYTEST_ARGS...]   (as root; tests/test_fresh_debian.py runs it)
#
#   1. starts a private dockerd and makes debian:bookworm-slim locally
#      (tests/docker_engine.sh; the same image the Docker smoke test uses);
#   2. copies the checkout into a new folder the way a clone has it: the files
#      git tracks (and new files not yet added, so a developer can check a
#      change before committing it), never .venv, node_modules or the bundle;
#   3. in a new debian:bookworm-slim container (Debian's own Python 3.11.2, no
#      Node, no Python packages, not even python3), with the checkout in a
#      folder of 200 characters with a space and Cyrillic letters: runs
#      scripts/setup as root, without the Docker tools (no engine runs inside
#      the container), and times it; then builds the bundle again in copies at
#      /app, /code and /w, and compares;
#   4. runs a fast, representative part of the suite there, or the pytest
#      arguments given: the CCTV age vectors (Node reads the ES-module
#      vectors), a real server on 127.0.0.1 with a no-JS tip decrypted by stock
#      age and tar, the JS unit tests against Python, the demo's printed
#      commands, and one real-browser test in Debian's Chromium;
#   5. removes the container, stops dockerd, deletes the folder.
# Last line on success: "fresh debian: OK ..." with the figures measured.
#
# Nothing from this machine goes into the container but the checkout and, when
# the host has one, its CA bundle: these machines reach PyPI and npm through a
# TLS-inspecting proxy that only the host's bundle trusts. It is mounted
# read-only and named to pip and npm through the environment; scripts/setup
# itself never learns of it.
#
# Settings (environment): SMOKE_CACHE_DIR (~/.cache/tiprelay), SMOKE_DEBIAN_MIRROR,
# SMOKE_CA_BUNDLE, FRESH_KEEP=1 (keep the folder for a post-mortem),
# FRESH_WHOLE_SUITE=1 (run the README's test command, scripts/test, instead:
# about as long as the suite; by hand, not in CI; give it -m "not container").
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_dir=${SMOKE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tiprelay}
mirror=${SMOKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ca_bundle=${SMOKE_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
started=$SECONDS

# The part of the suite that shows a fresh machine is complete: every kind of
# outside tool the suite needs is used at least once.
default_tests=(
  tests/test_age_vectors.py
  tests/test_browser_units.py
  "tests/test_server_intake.py::test_message_with_three_attachments_decrypts_with_stock_age_and_tar"
  tests/test_demo.py
  "tests/test_browser_sealing.py::test_js_on_only_ciphertext_leaves_the_browser_and_stock_age_and_tar_read_it"
)

log() { printf '[fresh debian %3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}

[ "$(id -u)" = 0 ] || fail "must run as root: dockerd, debootstrap and docker import need it"
command -v git >/dev/null || fail "git is not installed"
# shellcheck source=tests/docker_engine.sh
. "$repo/tests/docker_engine.sh"
engine_name=fresh
engine_check_tools

# A short path: the daemon's unix socket path must stay under 108 bytes.
work=$(mktemp -d /tmp/tiprelay-fresh.XXXXXX)
container=

cleanup() {
  local status=$?
  set +e
  if [ -n "$container" ] && [ -n "$dockerd_pid" ]; then
    docker rm --force --volumes "$container" >/dev/null 2>&1
  fi
  engine_cleanup
  if [ "${FRESH_KEEP:-0}" = 1 ]; then
    log "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

copy_checkout() {
  # A clone, as a new user has it (the suite runs git in it), then the working
  # tree's own files over it: what git tracks and new files not yet added, so
  # a change can be checked before it is committed. In CI the two are the same.
  git clone --quiet --no-hardlinks "$repo" "$work/src" ||
    fail "git clone of $repo failed"
  git -C "$repo" ls-files -z --cached --others --exclude-standard |
    (cd "$repo" && xargs -0 -r stat --printf '%n\0' 2>/dev/null) |
    tar -C "$repo" --null --files-from - --create --file - |
    tar -C "$work/src" --extract --file -
  [ -f "$work/src/scripts/setup" ] || fail "the copy of the checkout has no scripts/setup"
  log "checkout cloned: $(git -C "$work/src" ls-files | wc -l) files, no .venv or node_modules"
}

# The commands run in the container: set-up timed, then pytest. The figures
# go to stdout as "name=value" lines for the summary.
container_script() {
  cat <<'EOF'
set -euo pipefail
cd "$FRESH_CHECKOUT"
export DEBIAN_FRONTEND=noninteractive
echo "fresh: $(. /etc/os-release && echo "$PRETTY_NAME"), debian_version $(cat /etc/debian_version)"
command -v python3 >/dev/null && echo "fresh: python3 present before set-up" >&2 && exit 3
command -v node >/dev/null && echo "fresh: node present before set-up" >&2 && exit 3
setup_started=$(date +%s)
TIPRELAY_SETUP_DOCKER=${TIPRELAY_SETUP_DOCKER:-0} bash scripts/setup
echo "setup_seconds=$(( $(date +%s) - setup_started ))"
echo "python=$(.venv/bin/python -c 'import platform; print(platform.python_version())')"
echo "python_executable=$(readlink -f .venv/bin/python)"
echo "node=$(PATH=$PWD/.venv/bin:$PATH node --version)"
# The folders people and images most often clone into. The only step of
# set-up that reads the folder's name is the bundle's check that it does not
# embed it (short names like /app occur by chance in minified code): each of
# these copies builds the bundle, byte for byte the same as here.
for folder in /app /code /w; do
  mkdir -p "$folder"
  tar -C "$PWD" --exclude=./.venv --create --file - . | tar -C "$folder" --extract --file -
  (cd "$folder" && PATH="$OLDPWD/.venv/bin:$PATH" bash scripts/build-js)
  for built in app.js seal-worker.js openpgp-wrap.js; do
    cmp "relay/web/static/dist/$built" "$folder/relay/web/static/dist/$built"
  done
  rm -rf "$folder"
done
echo "bundle_folders=/app /code /w"
tests_started=$(date +%s)
status=0
if [ "${FRESH_WHOLE_SUITE:-0}" = 1 ]; then
  bash scripts/test "$@" || status=$?
else
  .venv/bin/pytest -p no:cacheprovider -q "$@" || status=$?
fi
echo "tests_seconds=$(( $(date +%s) - tests_started ))"
exit "$status"
EOF
}

run_in_container() {
  local ca_args=()
  if [ -s "$ca_bundle" ]; then
    ca_args=(--volume "$ca_bundle:/etc/tiprelay-host-ca.crt:ro"
      --env PIP_CERT=/etc/tiprelay-host-ca.crt
      --env NODE_EXTRA_CA_CERTS=/etc/tiprelay-host-ca.crt
      --env npm_config_cafile=/etc/tiprelay-host-ca.crt)
  fi
  local whole=()
  if [ "${FRESH_WHOLE_SUITE:-0}" = 1 ]; then
    # The README's test command itself, with the Docker tools installed. The
    # container checks cannot run inside it (no privileged containers here):
    # pass -m "not container".
    whole=(--env FRESH_WHOLE_SUITE=1 --env TIPRELAY_SETUP_DOCKER=1)
    log "container: scripts/test $*"
  else
    log "container: scripts/setup, then pytest $*"
  fi
  # Root on a real machine may read any process's /proc entries (the suite
  # checks what the relay holds open, and the relay makes itself non-dumpable)
  # and mount file systems (the disk-full test): the container gets those two.
  container=$(docker create --network host --shm-size 1g \
    --cap-add SYS_PTRACE --cap-add SYS_ADMIN "${whole[@]+"${whole[@]}"}" \
    --volume "$work/src:$checkout_in_container" "${ca_args[@]+"${ca_args[@]}"}" \
    --env CI=true --env TZ=UTC --env FRESH_CHECKOUT="$checkout_in_container" \
    debian:bookworm-slim bash -c "$(container_script)" fresh "$@")
  local status=0
  docker start --attach "$container" >"$work/container.log" 2>&1 || status=$?
  grep -E '^(fresh:|setup_seconds=|python=|python_executable=|node=|bundle_folders=|tests_seconds=)' \
    "$work/container.log" >&2 || true
  if [ "$status" != 0 ]; then
    fail "the container run exited $status; the end of its log:
$(tail -n 80 "$work/container.log")"
  fi
}

# Where the container's checkout lives: a folder with a space and Cyrillic
# letters, 200 characters long, so that set-up, the demo and the tests are shown
# to quote every path they use (venv scripts, npm, the bundle check).
checkout_in_container=$(python3 -c '
p = "/srv/tip relay/проверка"
while len(p) < 200:  # folders of at most 40 letters: a name has at most 255 bytes
    p += "/" + "к" * min(40, 200 - len(p) - 1)
print(p)')

figure() { sed -n "s/^$1=//p" "$work/container.log" | tail -n 1; }

log "work folder $work"
start_dockerd
log "dockerd $(docker version --format '{{.Server.Version}}') running (pid $dockerd_pid, vfs)"
make_base_image
copy_checkout
if [ $# -gt 0 ]; then
  run_in_container "$@"
else
  run_in_container "${default_tests[@]}"
fi
summary=$(grep -E '^[0-9]+ passed' "$work/container.log" | tail -n 1 ||
  grep -E ' passed' "$work/container.log" | tail -n 1)
echo "fresh debian: OK in $((SECONDS - started))s; setup $(figure setup_seconds)s," \
  "Python $(figure python), Node $(figure node); tests $(figure tests_seconds)s: ${summary:-?}"
