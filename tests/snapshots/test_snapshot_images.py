"""Images copied into a snapshot keep nothing but their pixels (issue #12, point 3):
no EXIF, XMP, IPTC, comments (JPEG COM, GIF, PNG text), maker notes nor ICC
profile, with the orientation applied; HEIC and WebP are read. Checked with
exiftool, an independent reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin

from consentry.snapshots.images import ImageJob, metadata_left, process

#: What exiftool may report of a clean copy: the file itself, and the image's own structure.
STRUCTURE = {"ExifTool", "System", "File", "Composite", "JFIF"}
PNG_STRUCTURE = {"ImageWidth", "ImageHeight", "BitDepth", "ColorType", "Compression", "Filter", "Interlace"}
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Jane Doe</dc:creator>'
       b"</rdf:Description></rdf:RDF></x:xmpmeta>")


def exiftool() -> str:
    found = shutil.which("exiftool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the metadata tests: install Debian's libimage-exiftool-perl (scripts/test.sh does)")
        pytest.skip("no exiftool: install Debian's libimage-exiftool-perl")
    return found


def tags(path: Path) -> dict:
    out = subprocess.run([exiftool(), "-j", "-G1", "-a", "-u", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def leftovers(path: Path) -> list[str]:
    """Every tag exiftool finds that is not the file's or the image's own structure."""
    bad = []
    for key in tags(path):
        group, _, name = key.partition(":")
        if key == "SourceFile" or group in STRUCTURE or (group == "PNG" and name in PNG_STRUCTURE):
            continue
        bad.append(key)
    return bad


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "EOS R5", 6  # make, model, orientation: rotate 90°
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 22.0, 0.0), "E", (4.0, 54.0, 0.0)
    return exif


def _sources(folder: Path) -> dict[str, Path]:
    px = Image.fromarray((np.random.default_rng(1).random((40, 60, 3)) * 255).astype("uint8"))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = {name: folder / name for name in ("p.jpg", "p.gif", "p.png", "p.webp", "p.heic")}
    px.save(out["p.jpg"], "JPEG", exif=_exif(), icc_profile=icc, comment=b"at Jane's house", xmp=XMP)
    px.save(out["p.gif"], "GIF", comment=b"Jane's secret gif comment")
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "Jane Doe at home")
    info.add_itxt("Description", "Jane, Keizersgracht 1")
    px.save(out["p.png"], "PNG", pnginfo=info, icc_profile=icc, exif=_exif())
    px.save(out["p.webp"], "WEBP", exif=_exif(), icc_profile=icc)
    import pillow_heif

    pillow_heif.register_heif_opener()
    px.save(out["p.heic"], "HEIF", exif=_exif())
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["p.jpg", "p.gif", "p.png", "p.webp", "p.heic"])
def test_nothing_but_pixels_survives(tmp_path: Path, name: str) -> None:
    source = _sources(tmp_path)[name]
    assert leftovers(source), f"the test image {name} should carry metadata"
    target = tmp_path / "out" / (name + (".png" if name.endswith(".png") else ".jpg"))
    result = process(ImageJob("i1", source, target, False, True))
    assert result.ok, result.problem
    assert leftovers(target) == [] and metadata_left(target) == []
    data = target.read_bytes()
    for word in (b"Jane", b"Canon", b"Keizersgracht"):
        assert word not in data


def test_the_orientation_is_applied_before_the_exif_goes(tmp_path: Path) -> None:
    source = _sources(tmp_path)["p.jpg"]
    target = tmp_path / "out.jpg"
    assert process(ImageJob("i1", source, target, False, True)).ok
    with Image.open(source) as a, Image.open(target) as b:
        assert a.size == (60, 40) and b.size == (40, 60)  # rotated as the EXIF said


@pytest.mark.slow
def test_colours_are_converted_to_srgb_and_the_profile_dropped(tmp_path: Path) -> None:
    """A wide-gamut photo: its numbers mean other colours than sRGB's, so they are converted."""
    px = Image.new("RGB", (8, 8), (200, 30, 30))
    lab_like = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    src = tmp_path / "wide.jpg"
    px.save(src, "JPEG", icc_profile=lab_like, quality=100)
    target = tmp_path / "out.jpg"
    assert process(ImageJob("i1", src, target, False, True)).ok
    assert leftovers(target) == []
    with Image.open(target) as out:
        assert "icc_profile" not in out.info


def test_verify_names_metadata_left_in_a_snapshot_image(tmp_path: Path) -> None:
    """What `snapshot verify` reads: every kind of metadata, not EXIF alone."""
    src = _sources(tmp_path)
    assert set(metadata_left(src["p.jpg"])) >= {"exif", "icc_profile", "comment", "xmp"}
    assert metadata_left(src["p.gif"]) == ["comment"]
    assert "text" in metadata_left(src["p.png"])
