"""Photos and signatures of intervention reports, checked by their content
(what Pillow can decode), never by their name or the browser's content type.

A photo is processed once, at upload: orientation applied from its EXIF, at
most 1600 px on its long side, re-encoded as a JPEG with no metadata at all
(no EXIF, so no GPS location, no XMP, no comment); only its colour profile is
kept. The PDF and the pages then use that file as it is.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PHOTO_BYTES = 15 * 1024 * 1024
MAX_SIDE = 1600
# Pixels, read from the header before anything is decoded (Pillow's own bomb
# limit, 89 million, lets through an image that costs most of a gigabyte). A
# JPEG is decoded at 1/2 to 1/8 of its side by its own decoder (draft), so a
# 50-megapixel camera's photo costs at most ~12 million pixels in memory; the
# other formats are decoded whole, so they get less: 24 million (a 48-megapixel
# phone saves 24 by default), about 100 MB while it is shrunk.
MAX_JPEG_PIXELS = 50_000_000
MAX_DECODED_PIXELS = 24_000_000
JPEG_QUALITY = 82
MAX_SIGNATURE_BYTES = 500 * 1024
MAX_SIGNATURE_SIDE = 4000
SIGNATURE_PREFIX = "data:image/png;base64,"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# What a phone's camera or gallery gives. Pillow only tries these decoders:
# anything else (GIF, TIFF, PSD, SVG...) is refused without being parsed.
PHOTO_FORMATS = ["JPEG", "PNG", "WEBP"]
try:  # HEIC (iPhones) when the optional pillow-heif plugin is installed.
    from pillow_heif import register_heif_opener  # type: ignore[import-not-found]
except ImportError:
    HEIF_SUPPORTED = False
else:
    register_heif_opener()
    PHOTO_FORMATS.append("HEIF")
    HEIF_SUPPORTED = True

HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}


class ImageRefused(ValueError):
    """A photo or signature we will not keep; `str()` is a French sentence."""


@dataclass(frozen=True)
class ProcessedImage:
    content: bytes
    width: int
    height: int


def _is_heif(head: bytes) -> bool:
    return head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


def _open(stream: IO[bytes], formats: list[str], label: str, *, not_an_image: str) -> Image.Image:
    """Image.open restricted to `formats`; a decompression bomb (a small file
    that decodes to billions of pixels) is refused like any unreadable file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(stream, formats=formats)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageRefused(f"{label} est trop grande (trop de pixels) : réduisez sa définition.") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageRefused(not_an_image) from error


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, transparency on white (JPEG has no alpha channel)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


def process_photo(upload: IO[bytes], *, name: str, size: int | None = None) -> ProcessedImage:
    """Check and shrink one photo; raise ImageRefused with a French message."""
    label = f"La photo « {name} »"
    if size is None:
        upload.seek(0, io.SEEK_END)
        size = upload.tell()
    if size > MAX_PHOTO_BYTES:
        raise ImageRefused(f"{label} dépasse 15 Mo.")
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if _is_heif(head) and not HEIF_SUPPORTED:
        raise ImageRefused(
            f"{label} est au format HEIC, que le portail ne lit pas encore. Sur l'iPhone : Réglages › Appareil "
            "photo › Formats › « Le plus compatible », puis reprenez la photo."
        )
    not_a_photo = f"{label} n'est pas une photo lisible (JPEG, PNG ou WebP{', HEIC' if HEIF_SUPPORTED else ''})."
    image = _open(upload, PHOTO_FORMATS, label, not_an_image=not_a_photo)
    limit = MAX_JPEG_PIXELS if image.format == "JPEG" else MAX_DECODED_PIXELS
    if image.width * image.height > limit:
        megapixels = image.width * image.height // 1_000_000
        raise ImageRefused(
            f"{label} est trop grande ({megapixels} millions de pixels, {limit // 1_000_000} au plus) : "
            "réduisez sa définition, ou reprenez-la avec le réglage par défaut de l'appareil."
        )
    try:
        icc_profile = image.info.get("icc_profile")
        # Resize first; the box is square, so rotating afterwards gives the same
        # result. A JPEG's decoder scales down by itself (draft): a 12-megapixel
        # photo is decoded at a quarter of its pixels, faster and lighter.
        scale = MAX_SIDE / max(image.size)
        if scale < 1:
            image.draft(None, (round(image.width * scale), round(image.height * scale)))
        # reducing_gap: a whole-number reduce() first (fast, little memory), then
        # the fine resampling on the smaller image.
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
        image = ImageOps.exif_transpose(image)
        image = _flatten(image)
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data
        raise ImageRefused(not_a_photo) from error
    finally:
        upload.seek(0)
    # Nothing of the original's metadata goes on: `info` holds the EXIF, XMP
    # and comment that Pillow would otherwise copy into the new file.
    image.info = {}
    output = io.BytesIO()
    options = {"icc_profile": icc_profile} if icc_profile else {}
    image.save(output, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True, **options)
    return ProcessedImage(output.getvalue(), image.width, image.height)


def read_signature(data_url: str) -> ProcessedImage:
    """The occupant's signature, drawn on the page's canvas and sent as a PNG
    data URL: a real, non-empty PNG under 500 KB, re-encoded clean."""
    if not data_url.startswith(SIGNATURE_PREFIX):
        raise ImageRefused("La signature n'est pas une image PNG : signez à nouveau.")
    encoded = data_url[len(SIGNATURE_PREFIX) :]
    if len(encoded) > (MAX_SIGNATURE_BYTES + 2) // 3 * 4:
        raise ImageRefused("La signature dépasse 500 Ko : effacez-la et signez à nouveau.")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ImageRefused("La signature est illisible : effacez-la et signez à nouveau.") from error
    if not raw.startswith(PNG_MAGIC):
        raise ImageRefused("La signature n'est pas une image PNG : signez à nouveau.")
    unreadable = "La signature est illisible : effacez-la et signez à nouveau."
    image = _open(io.BytesIO(raw), ["PNG"], "La signature", not_an_image=unreadable)
    try:
        if not (0 < image.width <= MAX_SIGNATURE_SIDE and 0 < image.height <= MAX_SIGNATURE_SIDE):
            raise ImageRefused("La signature a des dimensions inattendues : signez à nouveau.")
        image.load()
        rgba = image.convert("RGBA")
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageRefused(unreadable) from error
    # Strokes are whatever is clearly darker than white once the transparent
    # background is laid on white.
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    ink = Image.alpha_composite(background, rgba).convert("L").point(lambda value: 255 if value < 200 else 0)
    if ink.getbbox() is None:
        raise ImageRefused("La signature est vide : faites signer l'occupant dans le cadre.")
    output = io.BytesIO()
    rgba.save(output, "PNG", optimize=True)
    return ProcessedImage(output.getvalue(), rgba.width, rgba.height)
