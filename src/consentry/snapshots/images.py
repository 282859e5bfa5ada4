"""Images on their way into a snapshot: re-encoded from their pixels alone, and
faces blurred where a person in the photo may not be used.

Nothing but pixels survives the copy: the orientation is applied, colours are
converted to sRGB when the file carries an ICC profile, and the output is a
new image that never saw the source's EXIF, XMP, IPTC, comments (JPEG COM,
GIF, PNG text), maker notes or profile. HEIC/HEIF (the iPhone default, through
pillow-heif) and WebP are read like JPEG and PNG.

Faces are found, blurred and looked for again by `faces` (two detectors of
different kinds, no model download). When a photo must be blurred and no face
is found, or the second look still finds one, the photo is left out rather
than copied.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..sources.store import StorePath, readable
from . import faces as _faces
from .faces import Checker, Finder, blur, count_faces, find_faces, leftover_faces

try:  # HEIC/HEIF photos: a registry package with its own libheif, no download at run time
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - a dependency; without it HEIC stays "media_unreadable"
    pass

#: What Pillow reports of a file's metadata: none of it may reach a snapshot.
METADATA_KEYS = ("exif", "icc_profile", "comment", "xmp", "XML:com.adobe.xmp", "photoshop", "iptc", "adobe", "text")


def pixels_only(img: Image.Image) -> Image.Image:
    """A new image holding just the pixels, in sRGB, upright: the source's
    metadata cannot be copied from it because it has none."""
    img = ImageOps.exif_transpose(img) or img
    profile = img.info.get("icc_profile")
    mode = "RGBA" if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info) else "RGB"
    if profile:
        from PIL import ImageCms

        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            img = ImageCms.profileToProfile(img.convert(mode), src, ImageCms.createProfile("sRGB"), outputMode=mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            img = img.convert(mode)  # an unreadable profile: keep the numbers, drop the profile
    else:
        img = img.convert(mode)
    clean = Image.new(mode, img.size)
    clean.paste(img)
    return clean


@dataclass(frozen=True)
class ImageJob:
    item_id: str
    source: Path | StorePath
    target: Path
    blur: bool
    strip_exif: bool


@dataclass(frozen=True)
class ImageResult:
    item_id: str
    ok: bool
    faces: int = 0
    problem: str | None = None  # media_missing | media_unreadable | no_face_found | face_check_failed


def detect_faces(img: Image.Image, finder: Finder | None = None) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h) around every face the finder sees, at every angle it looks."""
    return find_faces(img, finder or _faces.FINDER)


def blur_faces(img: Image.Image, faces: list[tuple[int, int, int, int]]) -> Image.Image:
    """Blur each face with a margin, strongly enough that it cannot be recognised."""
    return blur(img, faces)


def process(job: ImageJob, finder: Finder | None = None, checker: Checker | None = None) -> ImageResult:
    """Copy one image: decoded and re-encoded, so no metadata survives. A photo to blur is
    published only if the second detector finds no face left in the blurred copy.
    `finder`/`checker` default to `faces.FINDER`/`faces.CHECKER`, read at each call."""
    try:
        with Image.open(readable(job.source)) as src:
            fmt = src.format or "JPEG"
            src.load()
            img = pixels_only(src) if job.strip_exif else src.copy()
    except FileNotFoundError:
        return ImageResult(job.item_id, False, problem="media_missing")
    except (UnidentifiedImageError, OSError, ValueError):
        return ImageResult(job.item_id, False, problem="media_unreadable")
    faces = 0
    if job.blur:
        scored = _faces.find_scored(img, finder or _faces.FINDER)
        if not scored:
            return ImageResult(job.item_id, False, problem="no_face_found")
        found = [box for box, _ in scored]
        img = blur_faces(img, found)
        if leftover_faces(img, checker or _faces.CHECKER):
            return ImageResult(job.item_id, False, problem="face_check_failed")
        faces = max(1, count_faces(found, [score for _, score in scored]))  # at least the one that made it blur
    job.target.parent.mkdir(parents=True, exist_ok=True)
    if not job.strip_exif and not job.blur:
        job.target.write_bytes(job.source.read_bytes())
        return ImageResult(job.item_id, True, faces)
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, "PNG")  # a fresh image: no text chunks, no profile, no exif
    else:
        img.convert("RGB").save(buf, "JPEG", quality=90)  # GIF, WebP, HEIC and the rest become JPEG
    job.target.write_bytes(buf.getvalue())
    return ImageResult(job.item_id, True, faces)


def process_all(jobs: list[ImageJob], workers: int | None = None) -> list[ImageResult]:
    """Threads: Pillow and OpenCV release the GIL while decoding and detecting."""
    if not jobs:
        return []
    if any(j.blur for j in jobs):
        import cv2  # noqa: F401 - once, here: a first import racing in several threads sees a half-made module
        import cv2.data  # noqa: F401

        _faces.load()  # the weights are read and checked once, before the threads (each loads its own networks)
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        return list(pool.map(process, jobs, chunksize=64))


def metadata_left(path: Path) -> list[str]:
    """The kinds of metadata still in an image file (what `snapshot verify` reports)."""
    with Image.open(path) as img:
        found = [k for k in METADATA_KEYS if img.info.get(k)]
        if img.getexif() and "exif" not in found:
            found.append("exif")
        if getattr(img, "text", None):  # PNG tEXt/iTXt/zTXt chunks
            found.append("text")
        if getattr(img, "applist", None):  # JPEG APPn segments other than JFIF
            found += sorted({name for name, _ in img.applist if name not in ("APP0",)} - set(found))
        return found


def has_exif(path: Path) -> bool:
    return "exif" in metadata_left(path)
