#!/bin/sh
# Entrypoint of the tiprelay Tor container.
#
#   entrypoint.sh [run]   render the torrc, start tor, publish the onion address
#   entrypoint.sh render  print the rendered torrc (what `run` gives tor)
#   entrypoint.sh verify  render and check it with `tor --verify-config`
#
# `run` copies the onion service's public hostname (never its key) to
# $ONION_PUBLISH_DIR/hostname, a volume the relay mounts read-only: the relay
# needs its own .onion address for the Onion-Location header, but must not be
# able to read Tor's secret key, which stays in $TOR_DATA_DIR (mode 0700).
#
# Settings (environment):
#   TOR_UPSTREAM       host:port of the relay on the internal network (relay:8080)
#   TOR_DATA_DIR       tor's data directory, a volume (/var/lib/tor)
#   TOR_TEMPLATE       the torrc template (/etc/tor/torrc.template)
#   ONION_PUBLISH_DIR  where the hostname is published (/onion)
#   TOR_HOSTNAME_WAIT_SECONDS  how long to wait for tor to write it (60)
#   TOR_DISABLE_NETWORK=1      create the onion service but never connect out
set -eu

TOR_UPSTREAM=${TOR_UPSTREAM:-relay:8080}
TOR_DATA_DIR=${TOR_DATA_DIR:-/var/lib/tor}
TOR_TEMPLATE=${TOR_TEMPLATE:-/etc/tor/torrc.template}
ONION_PUBLISH_DIR=${ONION_PUBLISH_DIR:-/onion}
TOR_HOSTNAME_WAIT_SECONDS=${TOR_HOSTNAME_WAIT_SECONDS:-60}

fail() {
  echo "tor-entrypoint: $*" >&2
  exit 1
}

# Tor's HiddenServicePort takes an address, not a host name, so resolve the
# relay's name (Docker's DNS on the compose network) to its IPv4 address.
upstream_address() {
  host=${TOR_UPSTREAM%:*}
  port=${TOR_UPSTREAM##*:}
  case "$port" in
    '' | *[!0-9]*) fail "TOR_UPSTREAM must be host:port, got '$TOR_UPSTREAM'" ;;
  esac
  case "$host" in
    *[!0-9.]*) address=$(getent ahostsv4 "$host" | awk 'NR == 1 { print $1 }') ;;
    *) address=$host ;; # already an IPv4 address
  esac
  [ -n "$address" ] || fail "cannot resolve the relay's host name '$host' (TOR_UPSTREAM)"
  echo "$address:$port"
}

render() {
  [ -r "$TOR_TEMPLATE" ] || fail "cannot read the torrc template $TOR_TEMPLATE"
  upstream=$(upstream_address)
  sed -e "s|@UPSTREAM@|$upstream|g" -e "s|@DATA_DIR@|$TOR_DATA_DIR|g" "$TOR_TEMPLATE"
  # For trying the deployment where Tor must not reach the Tor network (tests,
  # staging): the onion service is still created, nothing goes out.
  if [ "${TOR_DISABLE_NETWORK:-0}" = 1 ]; then
    echo "DisableNetwork 1"
  fi
}

publish_hostname() {
  hostname_file="$TOR_DATA_DIR/onion-service/hostname"
  waited=0
  while [ ! -s "$hostname_file" ]; do
    kill -0 "$tor_pid" 2>/dev/null || fail "tor exited before writing $hostname_file"
    [ "$waited" -lt "$TOR_HOSTNAME_WAIT_SECONDS" ] ||
      fail "tor wrote no onion hostname within ${TOR_HOSTNAME_WAIT_SECONDS}s"
    sleep 1
    waited=$((waited + 1))
  done
  # Write then rename, so the relay never reads a half-written address.
  cp "$hostname_file" "$ONION_PUBLISH_DIR/.hostname.tmp"
  chmod 0644 "$ONION_PUBLISH_DIR/.hostname.tmp"
  mv -f "$ONION_PUBLISH_DIR/.hostname.tmp" "$ONION_PUBLISH_DIR/hostname"
  echo "tor-entrypoint: onion service address published to $ONION_PUBLISH_DIR/hostname"
}

run() {
  torrc=$(render)
  install -d -m 0700 "$TOR_DATA_DIR"
  printf '%s\n' "$torrc" | tor --verify-config -f - >/dev/null ||
    fail "the rendered torrc is not valid (see 'entrypoint.sh verify')"
  # The config goes in on stdin, so nothing needs a writable /etc.
  tor -f - <<TORRC &
$torrc
TORRC
  tor_pid=$!
  trap 'kill -TERM "$tor_pid" 2>/dev/null' TERM INT
  publish_hostname
  # `wait` returns early when a trapped signal arrives; wait again for tor's
  # clean shutdown so the container's exit status is tor's.
  status=0
  wait "$tor_pid" || status=$?
  if kill -0 "$tor_pid" 2>/dev/null; then
    status=0
    wait "$tor_pid" || status=$?
  fi
  exit "$status"
}

case "${1:-run}" in
  run) run ;;
  render) render ;;
  verify)
    torrc=$(render)
    printf '%s\n' "$torrc" | tor --verify-config -f -
    ;;
  *) fail "unknown command '$1' (use run, render or verify)" ;;
esac
