#!/usr/bin/env bash
# Docker smoke test: the relay image and the Tor image, built and run for real.
#
#   bash tests/docker_smoke.sh        (as root; tests/test_docker.py runs it)
#
# No Docker engine runs here and no image registry is reachable, so this script
#   1. starts its own dockerd and
#   2. makes debian:bookworm-slim locally (both in tests/docker_engine.sh);
#   3. builds the relay image and the Tor image (`docker build --network host`);
#   4. runs the relay read-only, as its non-root user, with a demo key set made
#      outside (`tiprelay keygen --no-passphrase` + `tiprelay reviewer add`)
#      mounted read-only, waits for its HEALTHCHECK, submits a tip over HTTP
#      (host networking, 127.0.0.1 only), decrypts the stored ciphertext
#      outside the container with the stock `age -d` and `tar`, and stops it;
#   5. brings up docker-compose.yml with Debian's docker-compose (v1), Tor kept
#      off the Tor network (tests/docker_smoke.compose.yml): both containers get
#      healthy, the relay has no host port and only the internal network, Tor
#      reaches it at its HiddenServicePort target, and the relay's pages carry
#      the Onion-Location of the onion service Tor created;
#   6. stops everything it started (compose stack, containers, then dockerd by
#      its PID) and removes its folder.
# Every step logs what it does; any failure stops the script with the reason.
# Last line on success: "docker smoke: OK ..." with the figures measured.
#
# Settings (environment): SMOKE_CACHE_DIR (~/.cache/tiprelay), SMOKE_TIPRELAY
# (the host's tiprelay, default .venv/bin/tiprelay), SMOKE_DEBIAN_MIRROR,
# SMOKE_KEEP=1 (keep the work folder for a post-mortem; processes still stop).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_dir=${SMOKE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tiprelay}
tiprelay=${SMOKE_TIPRELAY:-$repo/.venv/bin/tiprelay}
mirror=${SMOKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ca_bundle=${SMOKE_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
relay_image="tiprelay:latest"
tor_image="tiprelay-tor:latest"
relay_uid=10001
started=$SECONDS

log() { printf '[docker smoke %3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}

[ "$(id -u)" = 0 ] || fail "must run as root: dockerd, debootstrap and docker import need it"
# shellcheck source=tests/docker_engine.sh
. "$repo/tests/docker_engine.sh"
engine_name=smoke
engine_check_tools
for tool in docker-compose age age-keygen python3; do
  command -v "$tool" >/dev/null ||
    fail "'$tool' is not installed (scripts/setup installs docker-compose and age)"
done
[ -x "$tiprelay" ] || fail "$tiprelay is missing (run scripts/setup)"

# One private engine at a time on a machine (two smoke runs would also fight
# over the compose network's fixed subnet). A second run waits for the first.
engine_take_lock

# A short path: the daemon's unix socket path must stay under 108 bytes.
work=$(mktemp -d /tmp/tiprelay-smoke.XXXXXX)
containers=()
compose_up=0
# docs/operators.md's `tiprelay` alias: the CLI from the relay image, on ./keys.
tiprelay_in_image() {
  docker run --rm -i --network none --user "$(id -u):$(id -g)" --volume "$work/keys:/keys" \
    --workdir / --entrypoint tiprelay "$relay_image" "$@"
}
compose() {
  DOCKER_HOST="unix://$work/docker.sock" TIPRELAY_KEYS_DIR="$work/keys" \
    docker-compose --project-name tiprelaysmoke --project-directory "$repo" \
    --file "$repo/docker-compose.yml" --file "$repo/tests/docker_smoke.compose.yml" "$@"
}

cleanup() {
  local status=$?
  set +e
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    if [ "$compose_up" = 1 ]; then
      compose down --volumes --timeout 10 >/dev/null 2>&1
    fi
    local id
    for id in "${containers[@]+"${containers[@]}"}"; do
      docker rm --force --volumes "$id" >/dev/null 2>&1
    done
  fi
  engine_cleanup
  # The OpenPGP step's host gpg may have started an agent for its test home.
  [ -d "$work/gpg" ] && gpgconf --homedir "$work/gpg" --kill all >/dev/null 2>&1
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then
    log "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 3. images ------------------------------------------------------------------------
build_images() {
  # Both at once: the relay's build is mostly waiting on downloads and disk.
  log "building $relay_image and $tor_image"
  # This machine may reach npm and PyPI through a TLS-inspecting proxy whose CA
  # only the host's bundle has: hand it to the build as a secret (see Dockerfile).
  local secret=()
  [ -s "$ca_bundle" ] && secret=(--secret "id=ca_bundle,src=$ca_bundle")
  DOCKER_BUILDKIT=1 docker build --progress plain --network host "${secret[@]+"${secret[@]}"}" \
    --build-arg DEBIAN_IMAGE=debian:bookworm-slim \
    --tag "$relay_image" "$repo" >"$work/build-relay.log" 2>&1 &
  local relay_build=$!
  DOCKER_BUILDKIT=1 docker build --progress plain --network host \
    --tag "$tor_image" "$repo/docker/tor" >"$work/build-tor.log" 2>&1 &
  local tor_build=$!
  wait "$tor_build" || fail "docker build of the Tor image failed; the end of its log:
$(tail -n 40 "$work/build-tor.log")"
  wait "$relay_build" || fail "docker build of the relay image failed; the end of its log:
$(tail -n 40 "$work/build-relay.log")"
  log "images built"
}

check_relay_image() {
  local user
  user=$(docker image inspect --format '{{.Config.User}}' "$relay_image")
  [ "$user" = "$relay_uid:$relay_uid" ] || fail "the relay image runs as '$user', not $relay_uid"
  # One container for every look inside (each start copies the image on vfs).
  # Nothing secret baked in: no age identity (the whole key, not the prefix
  # that code mentions) and no key or identity file anywhere; /keys, /config
  # and /data are empty until mounted. The browser bundle is in the package.
  local found
  found=$(docker run --rm --network none --entrypoint sh "$relay_image" -c '
    grep -rlE "AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}" \
      /opt /etc /usr/local /root /home /config /keys /data /srv 2>/dev/null
    find / -xdev \( -name "*.identity" -o -name "identity.txt" -o -name "*.key" \
      -o -name "*.age" \) -type f 2>/dev/null
    find /config /keys /data -mindepth 1 2>/dev/null
    python3 -c "import pathlib, relay; b = pathlib.Path(relay.__file__).parent / \"web/static/dist/app.js\"; b.is_file() or print(\"no browser bundle:\", b)"
    true')
  [ -z "$found" ] || fail "the relay image is not as it should be: $found"
}

verify_torrc_in_image() {
  # The torrc the entrypoint renders passes `tor --verify-config` in the image.
  docker run --rm --network none --env TOR_UPSTREAM=127.0.0.1:8080 "$tor_image" verify \
    >"$work/tor-verify.log" 2>&1 || fail "tor --verify-config failed in the Tor image:
$(cat "$work/tor-verify.log")"
}

wait_healthy() {
  local id=$1 what=$2 status
  for _ in $(seq 1 90); do
    status=$(docker inspect --format '{{.State.Health.Status}}' "$id")
    [ "$status" = healthy ] && return
    [ "$(docker inspect --format '{{.State.Running}}' "$id")" = true ] ||
      fail "the $what stopped; its log:
$(docker logs "$id" 2>&1 | tail -n 30)"
    sleep 1
  done
  fail "the $what is not healthy after 90s (status: $status); its log:
$(docker logs "$id" 2>&1 | tail -n 30)"
}

# --- 4. the relay on its own ---------------------------------------------------------------------
make_demo_keys() {
  # The reviewer's side: an identity made with the host's tiprelay.
  mkdir -p "$work/reviewer" "$work/keys"
  chmod 0700 "$work/reviewer"
  recipient=$("$tiprelay" keygen --no-passphrase -o "$work/reviewer/identity.txt" | tail -n 1)
  # The operator's side, as in docs/operators.md: the CLI from the image.
  tiprelay_in_image reviewer add demo --age-recipient "$recipient" >"$work/reviewer-add.log" 2>&1 ||
    fail "tiprelay reviewer add (in the image) failed:
$(cat "$work/reviewer-add.log")"
  [ -s "$work/keys/demo.toml" ] || fail "tiprelay reviewer add wrote no keys/demo.toml"
}

start_relay() {
  local port=$1
  mkdir -p "$work/data"
  chown "$relay_uid:$relay_uid" "$work/data"
  chmod 0700 "$work/data"
  # As in docker-compose.yml: read-only root, tmpfs /tmp, no capabilities, keys
  # and config read-only. Host networking here (no bridge without iptables),
  # so the relay listens on 127.0.0.1 only, on a free port.
  relay_id=$(docker run --detach --network host --read-only \
    --tmpfs /tmp:rw,nosuid,nodev,noexec,size=64m \
    --cap-drop ALL --security-opt no-new-privileges \
    --health-interval 2s \
    --env TIPRELAY_HOST=127.0.0.1 --env "TIPRELAY_PORT=$port" \
    --volume "$work/data:/data" \
    --volume "$work/keys:/keys:ro" \
    --volume "$repo/docker/relay/config:/config:ro" \
    "$relay_image")
  containers+=("$relay_id")
  wait_healthy "$relay_id" "relay container"
  log "relay: healthy on 127.0.0.1:$port"
  [ "$(docker exec "$relay_id" id -u)" = "$relay_uid" ] || fail "the relay does not run as uid $relay_uid"
  if docker exec "$relay_id" sh -c ': > /opt/tiprelay/written' 2>/dev/null; then
    fail "the relay container's root file system is writable"
  fi
}

submit_tip() {
  local url=$1
  # A message and one attachment through the no-JavaScript form (multipart
  # POST /submit), as a source's browser without JavaScript sends them.
  python3 - "$url" "$work/tip" <<'EOF'
import pathlib
import sys
import urllib.request
import uuid

url, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir()
message = "Docker smoke test: meet at the usual place. Встреча в обычном месте."
attachment = b"smoke attachment bytes\n" * 100
boundary = uuid.uuid4().hex
body = b"".join([
    f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n'.encode(),
    message.encode(), b"\r\n",
    f'--{boundary}\r\nContent-Disposition: form-data; name="attachment"; '
    f'filename="evidence.txt"\r\nContent-Type: text/plain\r\n\r\n'.encode(),
    attachment, b"\r\n",
    f"--{boundary}--\r\n".encode(),
])
request = urllib.request.Request(
    url + "/submit", data=body, method="POST",
    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
)
with urllib.request.urlopen(request, timeout=30) as response:
    if response.status >= 300:
        sys.exit(f"POST /submit answered {response.status}")
(out / "message.txt").write_text(message, encoding="utf-8")
(out / "evidence.txt").write_bytes(attachment)
EOF
}

check_ciphertext() {
  local blobs=() blob
  while IFS= read -r -d '' blob; do blobs+=("$blob"); done < <(find "$work/data" -path '*blobs*' -type f -print0)
  [ "${#blobs[@]}" = 1 ] || fail "expected 1 stored submission under data/, found ${#blobs[@]}: ${blobs[*]-}"
  blob=${blobs[0]}
  [ "$(head -c 21 "$blob")" = "age-encryption.org/v1" ] || fail "$blob is not an age v1 file"
  if grep -q "usual place" "$blob"; then fail "the stored file contains the message in clear"; fi
  mkdir "$work/plain"
  age -d -i "$work/reviewer/identity.txt" "$blob" | tar -x -C "$work/plain" -f - ||
    fail "stock age -d | tar -x could not read $blob"
  cmp "$work/plain/message.txt" "$work/tip/message.txt" || fail "message.txt differs from what was sent"
  local attachment
  attachment=$(find "$work/plain/files" -type f | head -n 1)
  [ -n "$attachment" ] || fail "the decrypted archive has no files/ entry"
  cmp "$attachment" "$work/tip/evidence.txt" || fail "the attachment differs from what was sent"
  log "stored ciphertext decrypts outside the container with stock age + tar"
}

check_logs() {
  docker logs "$relay_id" >"$work/relay.log" 2>&1
  [ -s "$work/relay.log" ] || fail "the relay wrote no logs (docker logs is empty)"
  if grep -E "usual place|evidence\.txt|127\.0\.0\.1:[0-9]+ .*(GET|POST)" "$work/relay.log"; then
    fail "the relay's logs hold message text, a file name or a client address"
  fi
}

stop_relay() {
  docker stop --time 20 "$relay_id" >/dev/null
  local code
  code=$(docker inspect --format '{{.State.ExitCode}}' "$relay_id")
  [ "$code" = 0 ] || fail "the relay exited with $code on SIGTERM (docker stop)"
}

# --- 5. docker-compose.yml, as docs/operators.md runs it --------------------------
# Python run inside the relay container (it has no curl): fetch a path on the
# relay, or send a small tip through the no-JavaScript form.
in_relay_python() {
  compose exec -T relay python3 -c "$1"
}
relay_recipients() {
  in_relay_python 'import json, urllib.request
served = json.load(urllib.request.urlopen("http://127.0.0.1:8080/api/v1/recipients", timeout=10))
print(" ".join(served["recipients"]), "fingerprint:", served["fingerprint"])'
}
reload_relay() {
  compose kill -s HUP relay >/dev/null 2>&1 || fail "docker-compose kill -s HUP relay failed"
  sleep 1
}

check_compose_stack() {
  compose config --quiet || fail "docker-compose config rejects docker-compose.yml"
  log "compose: docker-compose up -d (Tor kept off the Tor network)"
  compose_up=1
  compose up -d >"$work/compose-up.log" 2>&1 || fail "docker-compose up failed:
$(cat "$work/compose-up.log")"
  compose ps >"$work/compose-ps.log" 2>&1 || fail "docker-compose ps failed"
  local tor_id relay_id_compose
  tor_id=$(compose ps --quiet tor)
  relay_id_compose=$(compose ps --quiet relay)
  wait_healthy "$tor_id" "compose Tor container"
  wait_healthy "$relay_id_compose" "compose relay container"
  # Never a host port; only the internal network, at the address Tor forwards to.
  local ports networks internal
  ports=$(docker inspect --format '{{json .HostConfig.PortBindings}} {{json .NetworkSettings.Ports}}' "$relay_id_compose")
  [ "$ports" = "{} {}" ] || fail "the compose relay publishes ports: $ports"
  networks=$(docker inspect --format '{{range $name, $n := .NetworkSettings.Networks}}{{$name}}={{$n.IPAddress}} {{end}}' "$relay_id_compose")
  [ "$networks" = "tiprelaysmoke_onion=172.29.81.10 " ] ||
    fail "the compose relay is on '$networks', not only the internal onion network"
  internal=$(docker network inspect --format '{{.Internal}}' tiprelaysmoke_onion)
  [ "$internal" = true ] || fail "the onion network is not internal"
  # Tor reaches the relay where its HiddenServicePort points (bash, no curl there).
  docker exec "$tor_id" bash -c 'exec 3<>/dev/tcp/172.29.81.10/8080
    printf "GET /healthz HTTP/1.0\r\n\r\n" >&3; head -n 1 <&3' | grep -q ' 200 ' ||
    fail "the Tor container cannot reach the relay at 172.29.81.10:8080"
  # The relay's pages point Tor Browser at the onion service Tor created.
  onion_address=$(compose exec -T tor cat /onion/hostname | tr -d '\r\n')
  local location
  location=$(in_relay_python 'import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:8080/", timeout=10).headers["Onion-Location"])')
  [ "$location" = "http://$onion_address/" ] ||
    fail "the relay's Onion-Location is '$location', not Tor's http://$onion_address/"
  # The onion service key stays in Tor's private volume.
  docker exec "$tor_id" sh -c 'test $((0$(stat -c %a /var/lib/tor/onion-service) & 077)) = 0 &&
    test -s /var/lib/tor/onion-service/hs_ed25519_secret_key && test ! -e /onion/hs_ed25519_secret_key' ||
    fail "the onion service key is not private to the Tor container"
  log "compose: relay behind Tor healthy, internal only, Onion-Location $onion_address"
}

check_reviewer_changes() {
  # Add a reviewer, reload: new submissions are encrypted to them too.
  local bob bob_api_key
  bob=$("$tiprelay" keygen --no-passphrase -o "$work/reviewer/bob.txt" | tail -n 1)
  bob_api_key=$("$tiprelay" reviewer-key -o "$work/reviewer/bob-api.key" | grep -o 'ed25519:[A-Za-z0-9+/=]*' | head -n 1)
  [ -n "$bob_api_key" ] || fail "tiprelay reviewer-key printed no ed25519: line"
  tiprelay_in_image reviewer add bob --age-recipient "$bob" --api-key "$bob_api_key" \
    >"$work/reviewer-add-bob.log" 2>&1 || fail "tiprelay reviewer add bob failed:
$(cat "$work/reviewer-add-bob.log")"
  reload_relay
  # Each listing is read whole before it is searched: with pipefail, `cmd | grep -q`
  # fails whenever grep's early exit makes cmd's last write meet a closed pipe.
  local listing
  listing=$(relay_recipients) || fail "GET /api/v1/recipients failed in the relay container"
  grep -q "$bob" <<<"$listing" || fail "after SIGHUP the relay does not encrypt to the added reviewer"
  local served=$listing listed_fingerprint
  listing=$(tiprelay_in_image reviewer list 2>&1) || fail "tiprelay reviewer list failed:
$listing"
  grep -q bob <<<"$listing" || fail "tiprelay reviewer list does not show bob:
$listing"
  # The fingerprint the operator reads to the team is the one the relay serves sources.
  listed_fingerprint=$(sed -n 's/^Recipient-set fingerprint[^:]*: //p' <<<"$listing")
  [ -n "$listed_fingerprint" ] && grep -qF "$listed_fingerprint" <<<"$served" ||
    fail "tiprelay reviewer list's fingerprint ($listed_fingerprint) is not the one the relay serves"
  # Remove them, reload: gone.
  tiprelay_in_image reviewer remove bob >/dev/null 2>&1 || fail "tiprelay reviewer remove bob failed"
  reload_relay
  listing=$(relay_recipients) || fail "GET /api/v1/recipients failed in the relay container"
  if grep -q "$bob" <<<"$listing"; then
    fail "after removal and SIGHUP the relay still encrypts to the removed reviewer"
  fi
  grep -q "$recipient" <<<"$listing" || fail "the remaining reviewer was dropped"
  log "compose: reviewer added and removed with SIGHUP reloads"
}

check_openpgp_reviewer() {
  # An OpenPGP reviewer (a key made by the host's gpg), added with the image's CLI
  # from stdin: the image's gpg wraps a no-JS tip's file key to them, under the
  # read-only root and with no HOME, and the host's gpg opens it.
  local gpg_home="$work/gpg" fingerprint listing
  install -d -m 0700 "$gpg_home"
  gpg --homedir "$gpg_home" --batch --passphrase '' --quick-gen-key 'Olga <olga@example.org>' \
    ed25519 sign,cert 1y >/dev/null 2>&1 || fail "gpg could not make a test key"
  fingerprint=$(gpg --homedir "$gpg_home" --with-colons --list-keys | awk -F: '/^fpr/ {print $10; exit}')
  gpg --homedir "$gpg_home" --batch --passphrase '' --quick-add-key "$fingerprint" cv25519 encr 1y \
    >/dev/null 2>&1 || fail "gpg could not add an encryption subkey"
  gpg --homedir "$gpg_home" --export --armor "$fingerprint" >"$work/olga.asc"
  olga_api_key=$("$tiprelay" reviewer-key -o "$work/reviewer/olga-api.key" | grep -o 'ed25519:[A-Za-z0-9+/=]*' | head -n 1)
  [ -n "$olga_api_key" ] || fail "tiprelay reviewer-key printed no ed25519: line"
  # As the guide has it: the key file through standard input (the alias mounts only keys/).
  (cd "$work" && tiprelay_in_image reviewer add olga --openpgp-key /dev/stdin --api-key "$olga_api_key" <olga.asc) \
    >"$work/reviewer-add-olga.log" 2>&1 ||
    fail "tiprelay reviewer add olga --openpgp-key failed:
$(cat "$work/reviewer-add-olga.log")"
  reload_relay
  listing=$(relay_recipients) || fail "GET /api/v1/recipients failed in the relay container"
  grep -q "openpgp:$fingerprint" <<<"$listing" || fail "after SIGHUP the relay does not list the OpenPGP reviewer"
  in_relay_python 'import urllib.request, uuid
b = uuid.uuid4().hex
body = (f"--{b}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nopenpgp smoke tip\r\n--{b}--\r\n").encode()
r = urllib.request.Request("http://127.0.0.1:8080/submit", data=body, headers={"Content-Type": f"multipart/form-data; boundary={b}"})
urllib.request.urlopen(r, timeout=30)' || fail "could not submit a tip for the OpenPGP reviewer"
  # File times are blurred to the day: find the tip by its stanza, the only one with it.
  in_relay_python 'import pathlib, sys
[tip] = [p for p in pathlib.Path("/data/blobs").rglob("*") if p.is_file() and b"tiprelay-openpgp" in p.read_bytes()[:4096]]
sys.stdout.buffer.write(tip.read_bytes())' >"$work/openpgp-tip.age" || fail "could not read the stored tip"
  grep -q "tiprelay-openpgp $fingerprint" "$work/openpgp-tip.age" ||
    fail "the stored tip has no OpenPGP stanza for the new reviewer"
  GNUPGHOME="$gpg_home" "$tiprelay" decrypt --gpg -o "$work/openpgp-tip.tar" "$work/openpgp-tip.age" \
    >"$work/openpgp-decrypt.log" 2>&1 || fail "tiprelay decrypt --gpg failed:
$(cat "$work/openpgp-decrypt.log")"
  tar -xOf "$work/openpgp-tip.tar" message.txt | grep -q "openpgp smoke tip" ||
    fail "the OpenPGP reviewer's plaintext is not the tip"
  gpgconf --homedir "$gpg_home" --kill all >/dev/null 2>&1 || true
  tiprelay_in_image reviewer remove olga >/dev/null 2>&1 || fail "tiprelay reviewer remove olga failed"
  reload_relay
  log "compose: an OpenPGP reviewer added; the image's gpg wrapped a tip's file key to them"
}

check_logs_compose() {
  compose logs --no-color --tail 100 relay >"$work/compose-relay.log" 2>&1
  grep -q '"relay.starting"' "$work/compose-relay.log" || fail "docker-compose logs relay shows no start"
  compose logs --no-color tor >"$work/compose-tor.log" 2>&1
  grep -q 'onion service address published' "$work/compose-tor.log" ||
    fail "docker-compose logs tor does not show the onion service"
}

check_backup_and_restore() {
  # A tip stored through the compose relay, then the guide's backup ...
  in_relay_python 'import urllib.request, uuid
b = uuid.uuid4().hex
body = (f"--{b}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nbackup smoke tip\r\n--{b}--\r\n").encode()
r = urllib.request.Request("http://127.0.0.1:8080/submit", data=body, headers={"Content-Type": f"multipart/form-data; boundary={b}"})
urllib.request.urlopen(r, timeout=30)' || fail "could not submit a tip to the compose relay"
  # The operator's own backup key (docs/operators.md: stock age-keygen).
  local operator
  mkdir -p "$work/backup"
  cd "$work/backup"
  age-keygen -o backup.identity 2>/dev/null || fail "age-keygen failed"
  operator=$(age-keygen -y backup.identity)
  compose stop relay >/dev/null 2>&1 || fail "docker-compose stop relay failed"
  compose run --rm -T --no-deps --entrypoint tar relay -C /data -cf - . >relay-data.tar ||
    fail "the relay-data backup command failed"
  compose start relay >/dev/null 2>&1 || fail "docker-compose start relay failed"
  compose run --rm -T --no-deps --entrypoint tar tor -C /var/lib/tor -cf - . |
    tiprelay_in_image encrypt -r "$operator" >tor-data.tar.age || fail "the tor-data backup command failed"
  # A stock age file: the host's age reads what the image's tiprelay wrote.
  age -d -i backup.identity tor-data.tar.age | tar -tf - >/dev/null ||
    fail "stock age cannot read the tor-data backup"
  # ... holds the ciphertext, which decrypts with the reviewer's identity.
  mkdir "$work/backup/relay-data"
  tar -C "$work/backup/relay-data" -xf "$work/backup/relay-data.tar"
  local blob
  blob=$(find "$work/backup/relay-data/blobs" -type f | head -n 1)
  [ -n "$blob" ] || fail "the relay-data backup holds no ciphertext"
  age -d -i "$work/reviewer/identity.txt" "$blob" | tar -xOf - message.txt | grep -q "backup smoke tip" ||
    fail "the backed-up ciphertext does not decrypt to the tip"
  # Restore on a "new machine": no volumes, then the backups, then up.
  compose down --volumes >/dev/null 2>&1 || fail "docker-compose down --volumes failed"
  compose up --no-start >/dev/null 2>&1 || fail "docker-compose up --no-start failed"
  compose run --rm -T --no-deps --entrypoint tar relay -C /data -xf - <relay-data.tar ||
    fail "the relay-data restore command failed"
  docker run --rm -i --network none --user "$(id -u):$(id -g)" --volume "$PWD/backup.identity:/backup.identity:ro" \
    --entrypoint tiprelay "$relay_image" decrypt -i /backup.identity <tor-data.tar.age |
    compose run --rm -T --no-deps --entrypoint tar tor -C /var/lib/tor -xf - ||
    fail "the tor-data restore command failed"
  cd "$repo"
  compose up -d >/dev/null 2>&1 || fail "docker-compose up -d after the restore failed"
  wait_healthy "$(compose ps --quiet relay)" "restored compose relay"
  local restored_address
  restored_address=$(compose exec -T tor cat /onion/hostname | tr -d '\r\n')
  [ "$restored_address" = "$onion_address" ] ||
    fail "after the restore the onion address is $restored_address, not $onion_address"
  # Crash recovery would drop a blob without its row: both came back together.
  [ "$(compose exec -T relay sh -c 'ls /data/blobs | wc -l' | tr -d '\r')" = 1 ] ||
    fail "the restored relay does not hold the backed-up submission"
  log "compose: backup, restore (same onion address, ciphertext kept)"
}

finish_compose() {
  # A settings change is a restart; an upgrade is `docker build` (above) then
  # `docker-compose up -d`.
  compose restart relay >/dev/null 2>&1 || fail "docker-compose restart relay failed"
  wait_healthy "$(compose ps --quiet relay)" "restarted compose relay"
  compose up -d >/dev/null 2>&1 || fail "docker-compose up -d (upgrade) failed"
  compose down >"$work/compose-down.log" 2>&1 || fail "docker-compose down failed:
$(cat "$work/compose-down.log")"
  [ -n "$(docker volume ls --quiet --filter name=tiprelaysmoke_relay-data)" ] ||
    fail "docker-compose down removed the data volume"
  compose down --volumes >/dev/null 2>&1
  compose_up=0
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- run --------------------------------------------------------------------------------
log "work folder $work; docker client $docker_cli"
start_dockerd
log "dockerd $(docker version --format '{{.Server.Version}}') running (pid $dockerd_pid, vfs)"
make_base_image
build_images
check_relay_image
image_bytes=$(docker image inspect --format '{{.Size}}' "$relay_image")
layers=$(docker history --quiet "$relay_image" | wc -l)
log "relay image: $((image_bytes / 1000000)) MB, $layers layers in docker history"
verify_torrc_in_image
port=$(free_port)
make_demo_keys
start_relay "$port"
submit_tip "http://127.0.0.1:$port"
check_ciphertext
check_logs
stop_relay
log "relay stopped cleanly"
check_compose_stack
check_reviewer_changes
check_logs_compose
check_backup_and_restore
check_openpgp_reviewer
finish_compose
echo "docker smoke: OK in $((SECONDS - started))s; relay image $image_bytes bytes, $layers layers"
