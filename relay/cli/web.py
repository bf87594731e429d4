"""``tiprelay web-manifest`` and ``tiprelay verify-web``: pin, then watch, the code sources get."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from relay.errors import TiprelayError
from relay.server.rendering import BROWSER_BUNDLE, STATIC_DIR
from relay.web_manifest import WebManifest, make_web_manifest
from relay.web_verify import run_verify_relay_web


@click.command("web-manifest")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the manifest here (default: standard output).",
)
def web_manifest(output: Path | None) -> None:
    """Print the release manifest: each static file's SHA-256 and the pages' CSP.

    It describes this installation (a checkout after scripts/setup, or the
    Docker image): the files under relay/web/static, the browser bundle
    included. The same commit and lock give the same manifest on any machine.
    Publish it with a release; `tiprelay verify-web` checks a relay against it.

    \b
    Example:
      tiprelay web-manifest -o web-manifest.json
    """
    if not (STATIC_DIR / BROWSER_BUNDLE).is_file():
        raise click.ClickException(
            f"The browser bundle {STATIC_DIR / BROWSER_BUNDLE} is missing: build it first "
            "(scripts/build-js, which scripts/setup runs)."
        )
    text = make_web_manifest().to_json()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@click.command("verify-web")
@click.option("--server", "server_url", required=True, metavar="URL", help="The relay's address.")
@click.option(
    "--proxy",
    metavar="socks5h://HOST:PORT",
    help="Connect through a SOCKS5 proxy that resolves names; Tor: socks5h://127.0.0.1:9050.",
)
@click.argument(
    "manifest_path",
    metavar="MANIFEST",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
def verify_web(server_url: str, proxy: str | None, manifest_path: Path) -> None:
    """Check that a relay serves sources exactly the code in MANIFEST.

    Fetches the source pages as a source would and checks that each carries the
    manifest's Content-Security-Policy, no inline script, and loads only files
    the manifest lists; then that every listed file's SHA-256 matches. One line
    per check; exit status 1 if any differs. It catches a relay that changes the
    code for everyone, not one that targets a single visitor (docs/verify-web.md).

    \b
    Example:
      tiprelay verify-web --server http://abc...xyz.onion \\
                          --proxy socks5h://127.0.0.1:9050 web-manifest.json
    """
    if ".onion" in server_url and not proxy:
        raise click.ClickException(
            "An .onion address is reachable only through Tor: add --proxy socks5h://127.0.0.1:9050"
        )
    try:
        manifest = WebManifest.read(manifest_path)
        report = run_verify_relay_web(server_url, manifest, proxy=proxy)
    except TiprelayError as exc:
        raise click.ClickException(str(exc)) from None
    for check in report.checks:
        click.echo(f"{'ok  ' if check.passed else 'FAIL'} {check.subject}: {check.detail}")
    failed = [check for check in report.checks if not check.passed]
    if failed:
        click.echo(
            f"verify-web: {len(failed)} of {len(report.checks)} checks FAILED: the relay does "
            "not serve the code in the manifest.",
            err=True,
        )
        sys.exit(1)
    click.echo(f"verify-web: all {len(report.checks)} checks passed.")
