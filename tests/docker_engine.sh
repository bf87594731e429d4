# shellcheck shell=bash
# Sourced by the scripts that need a Docker engine of their own here
# (tests/docker_smoke.sh, tests/fresh_debian.sh). No engine runs on these
# machines and no image registry is reachable, so this
#   - starts a private dockerd (vfs storage, no iptables, no bridge; its exec
#     root, socket and pid file in the caller's work folder, its data root kept
#     in the cache folder between runs (see start_dockerd), its own containerd
#     namespace), and stops it by its PID;
#   - makes debian:bookworm-slim locally: `debootstrap --variant=minbase
#     bookworm`, trimmed like Debian's official slim image, `docker import`ed
#     (the tarball is cached in the cache folder, one per day).
#
# The caller sets: work (a short, empty folder: the socket path must stay under
# 108 bytes), cache_dir, mirror, engine_name (a word naming the containerd
# namespace), and defines log and fail; it calls engine_cleanup from its EXIT
# trap. A caller that needs to be the only private engine on the machine (the
# smoke test: its compose network has a fixed subnet) calls engine_take_lock;
# a second such caller waits up to 10 minutes for the first. Engines that do not
# (the fresh-Debian check) run beside it: each has its own socket, data root and
# containerd namespace.

dockerd_pid=
docker_cli=

engine_check_tools() {
  local tool
  for tool in dockerd debootstrap tar; do
    command -v "$tool" >/dev/null ||
      fail "'$tool' is not installed (scripts/setup installs docker.io and debootstrap, as root)"
  done
  # The client from the same Debian package as dockerd, so their API versions match.
  docker_cli=$(dirname "$(dirname "$(command -v dockerd)")")/bin/docker
  [ -x "$docker_cli" ] || docker_cli=$(command -v docker) || fail "no docker client installed"
}

engine_take_lock() {
  mkdir -p "$cache_dir"
  exec 9>"$cache_dir/docker-smoke.lock"
  flock --timeout 600 9 ||
    fail "another private Docker engine has held $cache_dir/docker-smoke.lock for 10 minutes"
}

docker() { "$docker_cli" --host "unix://$work/docker.sock" "$@"; }

# --- 1. dockerd ------------------------------------------------------------------
# The engine's data root (its images, layers and build cache) is kept in the
# cache folder between runs of the same engine on this machine, so that what a
# run builds, the next one reuses while it is unchanged: the base image (one a
# day), the image layers whose inputs did not change (Debian packages, the
# locked Python and npm packages). Only one run at a time uses it (a lock);
# a second run beside it starts from an empty one in its work folder, as does
# any run with ENGINE_FRESH=1. What a run leaves behind (containers, volumes,
# networks: a run that was killed) is removed at the next start; images no tag
# names any more and build cache over ENGINE_KEEP_CACHE (4gb) go at the end.
data_root=

choose_data_root() {
  data_root="$work/docker"
  [ "${ENGINE_FRESH:-0}" = 1 ] && return
  mkdir -p "$cache_dir"
  exec 7>"$cache_dir/engine-$engine_name.lock"
  local kept="$cache_dir/engine-$engine_name" pid
  if flock --nonblock 7; then
    # A dockerd of a run killed without its cleanup may still use it.
    pid=$(cat "$kept.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
      log "a dockerd left by an earlier run (pid $pid) still uses $kept: this run starts empty"
      exec 7>&-
      return
    fi
    data_root=$kept
  else
    exec 7>&-
    log "the kept $engine_name engine is in use by another run: this one starts empty"
  fi
}

remove_leftovers() {
  local ids
  ids=$(docker ps --all --quiet)
  # shellcheck disable=SC2086  # one id per word
  [ -z "$ids" ] || docker rm --force --volumes $ids >/dev/null 2>&1 || true
  docker volume prune --force >/dev/null 2>&1 || true
  docker network prune --force >/dev/null 2>&1 || true
}

start_dockerd() {
  choose_data_root
  mkdir -p "$data_root" "$work/exec" "$work/client"
  echo '{}' >"$work/daemon.json"
  # Its own config file, so /etc/docker/daemon.json changes nothing here; its own
  # containerd namespace, so nothing it does mixes with another engine's.
  dockerd \
    --config-file "$work/daemon.json" \
    --storage-driver vfs \
    --iptables=false --ip-forward=false --ip-masq=false --bridge none \
    --data-root "$data_root" --exec-root "$work/exec" \
    --host "unix://$work/docker.sock" --pidfile "$work/dockerd.pid" \
    --containerd-namespace "tiprelay-$engine_name" \
    --containerd-plugins-namespace "tiprelay-$engine_name-plugins" \
    --log-level warn >"$work/dockerd.log" 2>&1 7>&- 8>&- 9>&- &
  dockerd_pid=$!
  [ "$data_root" = "$work/docker" ] || echo "$dockerd_pid" >"$data_root.pid"
  # The client must not read (or write) anyone's ~/.docker.
  export DOCKER_CONFIG="$work/client"
  for _ in $(seq 1 120); do
    kill -0 "$dockerd_pid" 2>/dev/null ||
      fail "dockerd exited at start; its log:
$(tail -n 30 "$work/dockerd.log")"
    if docker version >/dev/null 2>&1; then
      [ "$data_root" = "$work/docker" ] || remove_leftovers
      return
    fi
    sleep 0.5
  done
  fail "dockerd did not answer on $work/docker.sock within 60s; its log:
$(tail -n 30 "$work/dockerd.log")"
}

# --- 2. debian:bookworm-slim --------------------------------------------------------
# Trim a minbase root file system the way Debian's official slim image is made:
# no documentation, manual pages or translations, now or in later installs; no
# package lists or downloaded packages; the security and updates suites.
slim_rootfs() {
  local root=$1
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${mirror}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror}-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/groff/"* \
    "$root/usr/share/lintian/"* "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin \
    "$root/var/cache/apt/archives/"*.deb "$root/var/log/"*.log "$root/var/log/apt/"*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  # Like the official image: no machine id of the build host's debootstrap run.
  : >"$root/etc/machine-id"
}

make_base_image() {
  mkdir -p "$cache_dir"
  local tarball
  tarball="$cache_dir/debian-bookworm-slim-$(date -u +%Y%m%d).tar"
  # Two engines may want it at once: one makes it while the other waits.
  exec 8>"$cache_dir/base-image.lock"
  flock --timeout 900 8 || fail "another run has been making the base image for 15 minutes"
  if [ -s "$tarball" ]; then
    log "base image: cached $tarball"
  else
    log "base image: debootstrap --variant=minbase bookworm (from $mirror)"
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
      fail "debootstrap failed; its log:
$(tail -n 30 "$work/debootstrap.log")"
    slim_rootfs "$work/rootfs"
    tar --numeric-owner -C "$work/rootfs" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$work/rootfs"
    # One tarball a day is enough; older ones only take space.
    find "$cache_dir" -maxdepth 1 -name 'debian-bookworm-slim-*.tar' -not -path "$tarball" -delete
  fi
  # Held through the import: another run making a new day's tarball deletes old ones.
  # A kept engine that imported this same tarball keeps its image, and with it
  # every layer built on it (a new import would be a new image id).
  local imported
  imported=$(docker image inspect --format '{{index .Config.Labels "tiprelay.base"}}' \
    debian:bookworm-slim 2>/dev/null || true)
  if [ "$imported" = "$(basename "$tarball")" ]; then
    log "base image: already imported in the kept engine"
  else
    docker import --change 'CMD ["bash"]' --change "LABEL tiprelay.base=$(basename "$tarball")" \
      "$tarball" debian:bookworm-slim >/dev/null
  fi
  exec 8>&-
}

# Stops the engine (after the caller removed what it started) and unmounts what
# dockerd or debootstrap left under the work folder. Never fails.
engine_cleanup() {
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    if [ "$data_root" != "$work/docker" ]; then
      docker image prune --force >/dev/null 2>&1
      docker builder prune --force --keep-storage "${ENGINE_KEEP_CACHE:-4gb}" >/dev/null 2>&1
    fi
    kill -TERM "$dockerd_pid"
    for _ in $(seq 1 100); do
      kill -0 "$dockerd_pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$dockerd_pid" 2>/dev/null; then
      log "dockerd (pid $dockerd_pid) ignored SIGTERM for 20s; killing it"
      kill -KILL "$dockerd_pid"
    fi
    wait "$dockerd_pid" 2>/dev/null
  fi
  local prefix
  for prefix in "$work/" "${data_root:+$data_root/}"; do
    [ -n "$prefix" ] || continue
    awk -v prefix="$prefix" 'index($2, prefix) == 1 { print $2 }' /proc/self/mounts |
      sort -r | while read -r mount_point; do umount -l "$mount_point"; done
  done
  exec 7>&-
  return 0
}
