"""MkDocs hook: pages quote gampen's own help and flag table, so they cannot drift.

``<!-- gampen-help: COMMAND -->`` becomes the output of ``gampen COMMAND --help``;
``<!-- gampen-flags -->`` becomes the table of flag bits from :mod:`gampen.flags`;
``<!-- gampen-include: FILE -->`` becomes the Python file ``docs/FILE`` as a code block.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

HELP = re.compile(r"<!-- gampen-help: ([a-z]+) -->")
INCLUDE = re.compile(r"<!-- gampen-include: ([\w./-]+) -->")
DOCS = Path(__file__).parent


def on_page_markdown(markdown: str, **_: object) -> str:
    """Replace the markers of one page."""
    markdown = HELP.sub(lambda m: "```text\n" + _help(m.group(1)) + "```", markdown)
    markdown = INCLUDE.sub(
        lambda m: "```python\n" + (DOCS / m.group(1)).read_text() + "```", markdown
    )
    return markdown.replace("<!-- gampen-flags -->", _flag_table())


def _help(command: str) -> str:
    """What ``gampen COMMAND --help`` prints."""
    from gampen.cli import build_parser

    parser = build_parser()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        parser.parse_args([command, "--help"])
    return out.getvalue()


def _flag_table() -> str:
    """The ``flags`` bits as a Markdown table."""
    from gampen.flags import FATAL, MEANINGS

    rows = ["| bit | name | meaning | fatal |", "|---|---|---|---|"]
    for flag, text in MEANINGS.items():
        fatal = "yes" if flag & FATAL else ""
        rows.append(f"| {int(flag)} | `{flag.name}` | {text} | {fatal} |")
    return "\n".join(rows)
