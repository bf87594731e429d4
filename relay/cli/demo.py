"""``tiprelay demo``: a throwaway relay on 127.0.0.1, set up in one folder.

The folder holds everything a real deployment keeps apart: the reviewer's
age identity (unprotected, so that nothing asks for a passphrase), the
reviewer's API signing key, the public ``keys/``, the ``data/`` and a config.
Running the demo again with the same folder keeps its keys and submissions.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import click

from relay.cli.common import fail, no_core_dumps
from relay.config import load_config
from relay.conversation_salt import ensure_conversation_salt
from relay.crypto.identities import X25519Identity, parse_identity_file
from relay.crypto.signing import SigningKey
from relay.errors import TiprelayError
from relay.keyring import write_reviewer_file
from relay.log import configure_logging

DEMO_REVIEWER = "demo"
IDENTITY_FILE = "identity.txt"
API_KEY_FILE = "reviewer.key"
CONFIG_FILE = "relay.toml"
# Settings the demo decides itself, whatever the environment says.
_PINNED_SETTINGS = ("host", "port", "data_dir", "keys_dir", "log_format")

BANNER = r"""
##### #   # ####   ###  #   #  ###  #   #  ###  #   #
  #   #   # #   # #   # #   # #   # #   # #   #  # #
  #   ##### ####  #   # # # # ##### # # # #####   #
  #   #   # #  #  #   # ## ## #   # ## ## #   #   #
  #   #   # #   #  ###  #   # #   # #   # #   #   #

####  ##### #   #  ###     A THROWAWAY DEMO, FOR TRYING OUT ONLY.
#   # #     ## ## #   #    Its secret keys lie unprotected in the demo folder:
#   # ####  # # # #   #    anyone who can read that folder can read every
#   # #     #   # #   #    submission. Never give this address to a real source.
####  ##### #   #  ###
"""


@click.command()
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The demo folder (created if missing; an existing one keeps its keys and data).",
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="The port on 127.0.0.1 to serve on.",
)
def demo(directory: Path, port: int) -> None:
    """Set up a throwaway relay with a demo reviewer in DIR and serve it on 127.0.0.1.

    Prints the address of the form and the exact commands that read what was
    submitted. Stop it with Ctrl-C.

    \b
    Example:
      tiprelay demo --dir ./demo --port 8080
    """
    no_core_dumps()  # the demo relay seals no-JS plaintext in memory too
    from relay.server.app import create_app, run_relay

    directory = directory.resolve()
    try:
        config_path = prepare_demo_folder(directory, port)
        pinned = {f"TIPRELAY_{setting.upper()}" for setting in _PINNED_SETTINGS}
        environment = {name: value for name, value in os.environ.items() if name not in pinned}
        config = load_config(environment, config_path)
        configure_logging(config.log_format, config.log_level)
        app = create_app(config, reload_keys_on_sighup=True)
    except TiprelayError as error:
        fail(str(error))
    click.echo(BANNER)
    click.echo(instructions(directory, port))
    run_relay(app, config)


def prepare_demo_folder(directory: Path, port: int) -> Path:
    """Create (or reuse) the demo folder's keys, data and config; the config's path."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    identity = _demo_identity(directory / IDENTITY_FILE)
    api_key = _demo_api_key(directory / API_KEY_FILE)
    keys_dir = directory / "keys"
    if not (keys_dir / f"{DEMO_REVIEWER}.toml").exists():
        write_reviewer_file(keys_dir, DEMO_REVIEWER, identity.recipient, api_key.public_bytes)
    ensure_conversation_salt(keys_dir)
    (directory / "data").mkdir(mode=0o700, exist_ok=True)
    config_path = directory / CONFIG_FILE
    config_path.write_text(
        "# The throwaway demo relay (written by `tiprelay demo`; rewritten on each start).\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        'data_dir = "data"\n'
        'keys_dir = "keys"\n'
        'log_format = "console"\n'
    )
    return config_path


def _demo_identity(path: Path) -> X25519Identity:
    if path.exists():
        identities = parse_identity_file(path.read_text())
        if len(identities) != 1:
            raise TiprelayError(f"{path} should hold exactly one age identity.")
        return identities[0]
    identity = X25519Identity.generate()
    _write_secret(
        path,
        "# tiprelay DEMO identity: throwaway and unprotected. Never use it for real tips.\n"
        f"# public key: {identity.recipient}\n"
        f"{identity}\n",
    )
    return identity


def _demo_api_key(path: Path) -> SigningKey:
    if path.exists():
        return SigningKey.from_key_file_text(path.read_text())
    key = SigningKey.generate()
    _write_secret(path, key.to_key_file_text())
    return key


def _write_secret(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def tiprelay_command() -> str:
    """This very ``tiprelay`` as an absolute path, so that a printed command runs as printed.

    ``./scripts/demo`` installs tiprelay into ``.venv/bin``, which is not on
    PATH: a bare ``tiprelay`` would be "command not found".
    """
    invoked = sys.argv[0] if sys.argv else ""
    if invoked and os.path.basename(invoked) == "tiprelay":
        found = invoked if os.sep in invoked else shutil.which(invoked)
        if found:
            return str(Path(found).absolute())
    beside_python = Path(sys.executable).with_name("tiprelay")
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python.absolute())
    return "tiprelay"


def instructions(directory: Path, port: int) -> str:
    """What to open and the exact commands that read the submissions."""
    url = f"http://127.0.0.1:{port}"
    tiprelay = shlex.quote(tiprelay_command())
    folder = shlex.quote(str(directory))
    identity = shlex.quote(str(directory / IDENTITY_FILE))
    key = shlex.quote(str(directory / API_KEY_FILE))
    bundle = shlex.quote(str(directory / "bundle"))
    plaintext = shlex.quote(str(directory / "plaintext"))
    team = shlex.quote(str(directory / "team"))
    demo_keys = shlex.quote(str(directory / "keys" / f"{DEMO_REVIEWER}.toml"))
    return f"""
Open the form:  {url}/
(In Tor Browser at the "Safest" level, or with JavaScript off, the server seals
the submission; with JavaScript on, the browser does.)

Read what was submitted, as a reviewer would:

  1. On the online machine, fetch the ciphertexts with the demo API key:
       {tiprelay} pull --server {url} --key {key} -o {bundle}
  2. On the offline machine, decrypt the bundle with the demo identity:
       {tiprelay} decrypt -i {identity} {bundle} -o {plaintext}

Answer a source who sent a codename (tips of a conversation are filed under
{plaintext}/conversation-<id>/; ID is the tip's id in the decrypt table):

  3. Once, on the offline machine, pin the team the replies are encrypted to:
       {tiprelay} pin-team --team {team} {demo_keys}
  4. Write the reply offline, into the bundle's outbox:
       {tiprelay} reply -i {identity} -o {plaintext} --team {team} {bundle} --to ID -m 'Your reply'
  5. On the online machine, upload it (the source reads it with their codename):
       {tiprelay} push --server {url} --key {key} {bundle}

Or with nothing but the stock age and tar tools, straight from the data folder:

  for blob in {folder}/data/blobs/*.age; do
    out={folder}/stock/$(basename "$blob" .age); mkdir -p "$out"
    age -d -i {identity} "$blob" | tar -x -C "$out"
  done

Stop the demo with Ctrl-C. Delete {folder} to forget everything.
"""
