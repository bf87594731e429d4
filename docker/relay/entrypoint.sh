#!/bin/sh
# Entrypoint of the tiprelay image: `tiprelay serve --config /config/relay.toml`,
# after one optional step.
#
# With TIPRELAY_ONION_ADDRESS_FILE set (docker-compose.yml sets it), the relay's
# onion address is read from that file, which the Tor container publishes, and
# handed to the relay as TIPRELAY_ONION_ADDRESS (the Onion-Location header). The
# relay itself knows nothing of files like this, so the variable is removed
# before it starts (it would be an unknown setting to it).
#
# Extra arguments go to `tiprelay serve`.
set -eu

CONFIG_FILE=/config/relay.toml
wait_seconds=${TIPRELAY_ONION_WAIT_SECONDS:-60}

fail() {
  echo "tiprelay-entrypoint: $*" >&2
  exit 1
}

if [ -n "${TIPRELAY_ONION_ADDRESS_FILE:-}" ]; then
  address_file=$TIPRELAY_ONION_ADDRESS_FILE
  waited=0
  # Tor writes the address when it first starts; a relay started alongside it
  # waits for it rather than serve pages without the header.
  while [ ! -s "$address_file" ]; do
    [ "$waited" -lt "$wait_seconds" ] ||
      fail "no onion address in $address_file after ${wait_seconds}s (is the tor container running?)"
    sleep 1
    waited=$((waited + 1))
  done
  address=$(tr -d ' \t\r\n' <"$address_file")
  # A v3 onion host name: 56 base32 letters and digits, then ".onion".
  if ! printf '%s' "$address" | grep -Eqx '[a-z2-7]{56}\.onion'; then
    fail "$address_file does not hold a v3 onion host name"
  fi
  export TIPRELAY_ONION_ADDRESS="$address"
fi
unset TIPRELAY_ONION_ADDRESS_FILE TIPRELAY_ONION_WAIT_SECONDS

[ -r "$CONFIG_FILE" ] ||
  fail "cannot read $CONFIG_FILE: mount your config folder at /config (read-only)"
exec tiprelay serve --config "$CONFIG_FILE" "$@"
