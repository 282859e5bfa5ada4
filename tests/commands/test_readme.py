"""The README's examples are what the commands really print."""

from __future__ import annotations

import re
from pathlib import Path

from cli_kit import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def _block_after(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    at = text.index(marker)
    return re.search(r"```\n(.*?)```", text[at:], re.S).group(1)


def test_the_readme_shows_validate_s_refusal_as_it_is_printed(tmp_path: Path) -> None:
    """The guide's example once said "1 value(s) are" after the command had
    learned to say "1 value is"."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "users.csv").write_text("user_id,handle,email,country,language,birth_date,created_at,deleted_at\n"
                                   "u1,h1,a@x.org,DE,de,1990-01-01,2020-01-01T00:00:00Z,\n")
    (bad / "content.csv").write_text("item_id,user_id,kind,visibility,text,media_path,parent_id,created_at,deleted_at\n"
                                     "i0,u1,post,public,hi,,,2021-01-01T00:00:00Z,\n"
                                     "i1,u3,post,public,hi,,,yesterday,\n")
    r = cli("validate", "--data", bad)
    assert r.exit_code == 2, r.output
    said = [" ".join(line.split()) for line in r.stderr.splitlines()]
    shown = [" ".join(line.split()) for line in _block_after("A bad export is refused as a whole").splitlines()]
    assert shown and all(line in said for line in shown), (shown, said)
