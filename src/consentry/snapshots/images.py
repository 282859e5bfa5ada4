"""Images on their way into a snapshot: re-encoded from their pixels alone, and
faces blurred where a person in the photo may not be used.

Nothing but pixels survives the copy: the orientation is applied, colours are
converted to sRGB when the file carries an ICC profile, and the output is a
new image that never saw the source's EXIF, XMP, IPTC, comments (JPEG COM,
GIF, PNG text), maker notes or profile. HEIC/HEIF (the iPhone default, through
pillow-heif) and WebP are read like JPEG and PNG.

Face detection is OpenCV's bundled Haar cascade (no model download). It can
miss a face; so when a photo must be blurred and no face is found, the photo
is left out rather than copied as it is.
"""

from __future__ import annotations

import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF photos: a registry package with its own libheif, no download at run time
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - a dependency; without it HEIC stays "media_unreadable"
    pass

_local = threading.local()

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
    source: Path
    target: Path
    blur: bool
    strip_exif: bool


@dataclass(frozen=True)
class ImageResult:
    item_id: str
    ok: bool
    faces: int = 0
    problem: str | None = None  # media_missing | media_unreadable | no_face_found


def _cascade():  # noqa: ANN202 - cv2 types
    """One classifier per thread: CascadeClassifier is not thread-safe."""
    if getattr(_local, "cascade", None) is None:
        import cv2

        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise RuntimeError(f"OpenCV's face cascade is missing ({path}); install opencv-python-headless<5")
        _local.cascade = cascade
    return _local.cascade


def detect_faces(img: Image.Image) -> list[tuple[int, int, int, int]]:
    import cv2
    import numpy as np

    gray = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2GRAY)
    gray = cv2.equalizeHist(gray)
    side = max(24, min(gray.shape) // 12)
    found = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(side, side))
    return [tuple(int(v) for v in f) for f in found]  # type: ignore[misc]


def blur_faces(img: Image.Image, faces: list[tuple[int, int, int, int]]) -> Image.Image:
    """Blur each face with a margin, strongly enough that it cannot be recognised."""
    from PIL import ImageFilter

    out = img.convert("RGB")
    for x, y, w, h in faces:
        mx, my = w // 4, h // 4
        box = (max(0, x - mx), max(0, y - my), min(out.width, x + w + mx), min(out.height, y + h + my))
        region = out.crop(box)
        radius = max(8, max(region.size) // 4)
        out.paste(region.filter(ImageFilter.GaussianBlur(radius)), box)
    return out


def process(job: ImageJob) -> ImageResult:
    """Copy one image: decoded and re-encoded, so no metadata survives."""
    try:
        with Image.open(job.source) as src:
            fmt = src.format or "JPEG"
            src.load()
            img = pixels_only(src) if job.strip_exif else src.copy()
    except FileNotFoundError:
        return ImageResult(job.item_id, False, problem="media_missing")
    except (UnidentifiedImageError, OSError, ValueError):
        return ImageResult(job.item_id, False, problem="media_unreadable")
    faces = 0
    if job.blur:
        found = detect_faces(img)
        if not found:
            return ImageResult(job.item_id, False, problem="no_face_found")
        img = blur_faces(img, found)
        faces = len(found)
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
