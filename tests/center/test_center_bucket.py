"""The privacy center over an export in an S3 bucket (a real S3 server, moto's):
a person's page and the thumbnail of their own photo are read from the bucket,
for them alone. (The thumbnail once failed there: the photo's path was checked
and opened as a local file.)"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from center_kit import (  # noqa: F401  (fixtures)
    ALICE, BOB, center_factory, page_text, smtp,
)
from exportkit import item, user, write_export


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory, s3) -> str:  # noqa: ANN001
    """Alice and Bob, a photo each, in a bucket; Bob's second item points out of the export."""
    folder = tmp_path_factory.mktemp("bucket-export")
    (folder / "media").mkdir()
    for name, colour in (("alice.jpg", (200, 30, 30)), ("bob.jpg", (30, 30, 200))):
        Image.new("RGB", (640, 480), colour).save(folder / "media" / name, "JPEG")
    users = [user(ALICE, email="alice@example.org", country="DE", language="en"),
             user(BOB, email="bob@example.org", country="NL", language="nl")]
    content = [item("a-photo", ALICE, kind="photo", created_at="2022-02-01T00:00:00Z", text="my photo",
                    media_path="media/alice.jpg"),
               item("b-photo", BOB, kind="photo", created_at="2022-02-02T00:00:00Z", text="bob's photo",
                    media_path="media/bob.jpg")]
    return s3.upload(write_export(folder, users, content, []), "center")


def test_a_person_sees_their_own_photo_from_the_bucket_and_nobody_elses(center_factory) -> None:  # noqa: F811
    kit = center_factory()
    assert str(kit.settings.data).startswith("s3://")
    alice, bob = kit.signed_in_client(ALICE), kit.signed_in_client(BOB)
    page = alice.get("/me")
    assert page.status_code == 200 and "my photo" in page_text(page.text)
    assert '<img src="/me/media/a-photo"' in page.text
    r = alice.get("/me/media/a-photo")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    im = Image.open(io.BytesIO(r.content))
    assert max(im.size) <= 160 and im.getpixel((10, 10))[0] > 150  # Alice's red photo
    assert bob.get("/me/media/a-photo").status_code == 404
    assert bob.get("/me/media/b-photo").status_code == 200


def test_own_media_never_leaves_the_bucket_folder(s3, tmp_path) -> None:  # noqa: ANN001
    from consentry.people import own_media
    from consentry.sources import Export

    folder = tmp_path / "exp"
    (folder / "media").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(folder / "media" / "a.jpg", "JPEG")
    content = [item("a", ALICE, kind="photo", media_path="media/a.jpg"),
               item("out", ALICE, kind="photo", media_path="media/../../secret/a.jpg")]
    uri = s3.upload(write_export(folder, [user(ALICE)], content, []), "escape/exp")
    s3.put("secret/a.jpg", (folder / "media" / "a.jpg").read_bytes())  # beside the export, not in it
    export = Export(uri)
    assert str(own_media(export, ALICE, "a")) == f"{uri}/media/a.jpg"
    assert own_media(export, ALICE, "out") is None
    assert own_media(export, BOB, "a") is None
