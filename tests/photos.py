"""Phone photos for the browser tests and the upload benchmark: JPEGs as a
phone's camera writes them (detail that does not compress away, the EXIF
orientation, a GPS position and a comment that must not leave the phone)."""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import ExifTags, Image, ImageDraw

GPS_COMMENT = b"taken at 14 rue des Tilleuls, Metz"


def camera_photo(
    size: tuple[int, int] = (4000, 3000), *, seed: int = 1, quality: int = 90, grain: float = 0.3
) -> bytes:
    """A `size` photo (4000 x 3000 = 12 MP) of shapes over `grain`, with EXIF
    (make, orientation 1, a GPS position) and a comment: about 5 MB at 12 MP,
    270 KB once shrunk to 1600 px (twice the grain: about 700 KB)."""
    randomness = random.Random(seed)
    # Grain: noise drawn small and scaled up, so that it costs what a real photo does once compressed.
    image = Image.new("RGB", size, (randomness.randrange(90, 200), randomness.randrange(90, 200), 120))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = randomness.randrange(size[0]), randomness.randrange(size[1])
        w, h = randomness.randrange(50, size[0] // 3), randomness.randrange(50, size[1] // 3)
        colour = tuple(randomness.randrange(256) for _ in range(3))
        (draw.ellipse if randomness.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=colour)
    # Grain over it all: what makes a real photo cost what it does once compressed.
    image = Image.blend(image, Image.effect_noise(size, 160 * grain).convert("RGB"), grain)
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Phone"
    exif[ExifTags.Base.Orientation] = 1
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (49.0, 7.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (6.0, 10.0, 30.0)
    output = io.BytesIO()
    image.save(output, "JPEG", exif=exif, quality=quality, comment=GPS_COMMENT)
    return output.getvalue()


def write_camera_photos(
    folder: Path, count: int, size: tuple[int, int] = (4000, 3000), *, grain: float = 0.3
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(1, count + 1):
        path = folder / f"IMG_{number:04d}.jpg"
        path.write_bytes(camera_photo(size, seed=number, grain=grain))
        paths.append(path)
    return paths


def has_location(content: bytes) -> bool:
    """Whether JPEG bytes still carry the EXIF block, its GPS position or the comment."""
    return b"Exif\x00\x00" in content or GPS_COMMENT in content
