""""My data" a person recognises (issue #14, point 2): each item with its
date, its kind in the reader's language and a text excerpt; a thumbnail of
their own photos, served to them alone; pages with honest counts (the page
used to stop at 200 rows without saying so)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from center_kit import (  # noqa: F401  (fixtures)
    ALICE, BOB, CenterKit, center_factory, page_text, smtp,
)
from consentry.center import i18n
from exportkit import item, user, write_export

pytestmark = pytest.mark.slow  # every test here: see the markers in pyproject.toml

N_POSTS = 120


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Alice with 120 posts and a photo whose file carries EXIF (GPS, camera); Bob with a photo."""
    folder = tmp_path_factory.mktemp("my-data-export")
    (folder / "media").mkdir()
    for name, colour in (("alice.jpg", (200, 30, 30)), ("bob.jpg", (30, 30, 200))):
        im = Image.new("RGB", (640, 480), colour)
        exif = Image.Exif()
        exif[0x010F] = "SecretCam"  # Make
        exif[0x8825] = {1: "N", 2: (52.0, 22.0, 0.0)}  # GPS
        im.save(folder / "media" / name, "JPEG", exif=exif)
    users = [user(ALICE, email="alice@example.org", country="DE", language="en"),
             user(BOB, email="bob@example.org", country="NL", language="nl")]
    content = [item(f"a-post-{i:03d}", ALICE, created_at=f"2021-01-{1 + i % 28:02d}T00:00:00Z",
                    text=f"post number {i} about the harbour at dawn, with a long tail of words that goes on and on "
                         f"until it needs cutting {i}") for i in range(N_POSTS)]
    content += [item("a-photo", ALICE, kind="photo", created_at="2022-02-01T00:00:00Z", text="my photo",
                     media_path="media/alice.jpg"),
                item("b-photo", BOB, kind="photo", created_at="2022-02-02T00:00:00Z", text="bob's photo",
                     media_path="media/bob.jpg")]
    return write_export(folder, users, content, [])


def test_pages_say_which_items_of_how_many(center_factory) -> None:  # noqa: F811
    kit = center_factory()
    c = kit.signed_in_client(ALICE)
    total = N_POSTS + 1
    first = page_text(c.get("/me").text)
    assert f"Items 1 to 50 of {total}" in first and "Page 1 of 3" in first
    assert 'rel="next"' in c.get("/me").text and 'rel="prev"' not in c.get("/me").text
    last = c.get("/me?page=3").text
    assert f"Items 101 to {total} of {total}" in page_text(last) and 'rel="next"' not in last
    assert len(re.findall(r"<tr><td", last)) == total - 100
    assert f"Items 101 to {total} of {total}" in page_text(c.get("/me?page=99").text)  # past the end: the last page
    # Every item is on exactly one page.
    seen = [x for p in (1, 2, 3) for x in re.findall(r'<span class="id">([^<]+)</span>', c.get(f"/me?page={p}").text)]
    assert len(seen) == len(set(seen)) == total


def test_each_item_has_its_kind_in_the_readers_language_and_an_excerpt(center_factory) -> None:  # noqa: F811
    kit = center_factory()
    c = kit.signed_in_client(ALICE)
    text = page_text(c.get("/me").text)
    assert "Photo" in text and "my photo" in text
    assert re.search(r"post number \d+ about the harbour at dawn, with a long tail[^…]*…", text)  # cut at a word, and says so
    for lang in ("de", "pl", "el"):
        _ = i18n.gettext(lang)
        page = page_text(c.get(f"/me?lang={lang}").text)
        assert _("Photo") in page and _("Post") in page
        assert _("Items %(first)s to %(last)s of %(total)s", first=1, last=50, total=N_POSTS + 1) in page


def test_a_thumbnail_of_ones_own_photo_for_oneself_alone_without_metadata(center_factory) -> None:  # noqa: F811
    kit = center_factory()
    alice, bob = kit.signed_in_client(ALICE), kit.signed_in_client(BOB)
    assert '<img src="/me/media/a-photo"' in alice.get("/me").text
    r = alice.get("/me/media/a-photo")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "no-store" in r.headers["cache-control"]
    im = Image.open(io.BytesIO(r.content))
    assert max(im.size) <= 160 and not im.getexif() and "exif" not in im.info
    assert im.getpixel((10, 10))[0] > 150  # Alice's red photo, not Bob's blue one
    # Bob cannot see Alice's photo, and learns nothing from trying (same answer as for no photo at all).
    assert bob.get("/me/media/a-photo").status_code == 404
    assert bob.get("/me/media/no-such-item").status_code == 404
    assert alice.get("/me/media/b-photo").status_code == 404
    assert kit.new_client().get("/me/media/a-photo").status_code == 401
