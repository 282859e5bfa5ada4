"""Small, real JPEG files for photo items.

The images are tiny abstract pictures, but the files are genuine JPEGs with
genuine EXIF: roughly half carry GPS coordinates (near the author's country)
plus camera make/model and capture time, because location metadata in uploads
is exactly what a training pipeline must strip or refuse.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

SIZES: tuple[tuple[int, int], ...] = ((64, 64), (96, 96), (128, 96), (96, 128), (160, 120), (120, 160))
CAMERAS: tuple[tuple[str, str], ...] = (
    ("Apple", "iPhone 12"), ("Apple", "iPhone 14 Pro"), ("samsung", "SM-G991B"), ("Google", "Pixel 7"),
    ("Canon", "Canon EOS 80D"), ("FUJIFILM", "X-T30"), ("Xiaomi", "Redmi Note 10"), ("NIKON CORPORATION", "NIKON D750"),
)
# Rough city coordinates per country, so a photo's GPS is plausible for its author.
PLACES: dict[str, tuple[float, float]] = {
    "DE": (52.52, 13.40), "FR": (48.86, 2.35), "NL": (52.37, 4.90), "IE": (53.35, -6.26), "ES": (40.42, -3.70),
    "IT": (41.90, 12.50), "PL": (52.23, 21.01), "SE": (59.33, 18.07), "AT": (48.21, 16.37), "BE": (50.85, 4.35),
    "PT": (38.72, -9.14), "DK": (55.68, 12.57), "FI": (60.17, 24.94), "CZ": (50.08, 14.44), "GR": (37.98, 23.73),
    "RO": (44.43, 26.10), "HU": (47.50, 19.04), "NO": (59.91, 10.75), "IS": (64.15, -21.94), "GB": (51.51, -0.13),
    "CH": (47.38, 8.54), "US": (40.71, -74.01), "BR": (-23.55, -46.63), "IN": (19.08, 72.88), "CA": (43.65, -79.38),
    "JP": (35.68, 139.69), "NG": (6.52, 3.38), "MX": (19.43, -99.13), "AU": (-33.87, 151.21),
}


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    value = abs(value)
    deg = int(value)
    minutes_f = (value - deg) * 60
    minutes = int(minutes_f)
    centi_sec = int(round((minutes_f - minutes) * 60 * 100))
    return IFDRational(deg, 1), IFDRational(minutes, 1), IFDRational(centi_sec, 100)


def _picture(rng: np.random.Generator) -> Image.Image:
    w, h = SIZES[int(rng.integers(0, len(SIZES)))]
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, w if rng.random() < 0.5 else h)
    ramp = (c0[None, :] * (1 - t[:, None]) + c1[None, :] * t[:, None]).astype(np.uint8)
    arr = np.broadcast_to(ramp[None, :, :], (h, w, 3)) if len(t) == w else np.broadcast_to(ramp[:, None, :], (h, w, 3))
    img = Image.fromarray(np.ascontiguousarray(arr), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 9))):
        x0, x1 = sorted(rng.integers(0, w, 2).tolist())
        y0, y1 = sorted(rng.integers(0, h, 2).tolist())
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse((x0, y0, x1 + 4, y1 + 4), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x1 + 2, y1 + 2), fill=colour)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 6)))
    return img


def write_jpeg(
    path: Path,
    rng: np.random.Generator,
    taken_at: int,
    country: str | None,
) -> bool:
    """Write one JPEG; return whether it carries GPS EXIF.

    `taken_at` is seconds since the epoch (UTC), used for the EXIF DateTime.
    """
    img = _picture(rng)
    exif = Image.Exif()
    roll = rng.random()
    has_gps = roll < 0.5
    if roll < 0.75:  # half with GPS, a quarter camera-only, a quarter stripped
        make, model = CAMERAS[int(rng.integers(0, len(CAMERAS)))]
        exif[0x010F] = make
        exif[0x0110] = model
        exif[0x0132] = datetime.fromtimestamp(taken_at, timezone.utc).strftime("%Y:%m:%d %H:%M:%S")
    if has_gps:
        lat0, lon0 = PLACES.get(country or "", (rng.uniform(-50, 60), rng.uniform(-120, 140)))
        lat = lat0 + rng.normal(0, 0.8)
        lon = lon0 + rng.normal(0, 0.8)
        gps = exif.get_ifd(0x8825)
        gps[1] = "N" if lat >= 0 else "S"
        gps[2] = _dms(lat)
        gps[3] = "E" if lon >= 0 else "W"
        gps[4] = _dms(lon)
    img.save(path, "JPEG", quality=int(rng.integers(70, 92)), exif=exif)
    return has_gps
