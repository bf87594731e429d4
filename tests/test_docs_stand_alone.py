"""The repository's code and docs cite only what someone who clones it can read."""

from __future__ import annotations

import re

from tests.support_checkout import REPO, checkout_files

OUTSIDE_NOTES = re.compile(r"DESIGN\.md|STYLE\.md|\.\./shared/")
"""Notes kept beside the project while it was written, never in it."""


def test_no_file_cites_notes_that_live_outside_the_repository() -> None:
    citing = []
    for relative in checkout_files():
        if relative.suffix not in {".py", ".md", ".js", ".mjs", ".sh", ".toml", ".html", ".css",
                                   ".txt", ".yml", ".json"} and relative.name != "Dockerfile":
            continue  # fmt: skip
        text = (REPO / relative).read_text(encoding="utf-8", errors="replace")
        if relative.name == "test_docs_stand_alone.py":
            continue
        citing += [f"{relative}:{n}" for n, line in enumerate(text.splitlines(), 1)
                   if OUTSIDE_NOTES.search(line)]  # fmt: skip
    assert not citing, f"these lines cite notes outside the repository: {citing}"
