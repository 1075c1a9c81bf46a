"""Photos that cost a gigabyte (issue 14, finding 4): the pixels are counted
from the header before anything is decoded, a JPEG is decoded at a fraction of
its size, and the memory one photo costs is measured, in a fresh process (the
peak resident size, which is what a server's worker pays)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orders import images

MB = 1024 * 1024

# Makes a photo without keeping it in this process: a flat colour with a little
# noise (so that the JPEG is not trivially small), saved to `path`.
MAKE = """
import sys
from PIL import Image
width, height, fmt, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
Image.MAX_IMAGE_PIXELS = None
image = Image.new("RGB", (width, height), (180, 140, 90))
image.paste(Image.effect_noise((512, 512), 40).convert("RGB"), (0, 0))
image.save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
"""

# Processes one photo through the upload's own function and prints what it cost.
MEASURE = """
import io, json, resource, sys, time
from orders import images
content = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    result = images.process_photo(io.BytesIO(content), name="photo", size=len(content))
    outcome = [result.width, result.height]
except images.ImageRefused as error:
    outcome = str(error)
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "peak_kb": after - before, "seconds": seconds}))
"""


def make(tmp_path: Path, width: int, height: int, fmt: str) -> Path:
    path = tmp_path / f"photo-{width}x{height}.{fmt.lower()}"
    subprocess.run([sys.executable, "-c", MAKE, str(width), str(height), fmt, str(path)], check=True)
    return path


def measure(path: Path) -> dict:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)], check=True, capture_output=True, text=True, cwd=root
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_an_88_megapixel_photo_is_refused_before_it_is_decoded(tmp_path, fmt):
    cost = measure(make(tmp_path, 11_000, 8_000, fmt))

    assert "trop grande (88 millions de pixels" in cost["outcome"]
    assert cost["peak_kb"] * 1024 < 20 * MB
    assert cost["seconds"] < 1


def test_a_48_megapixel_jpeg_is_decoded_at_a_fraction_of_its_size(tmp_path):
    cost = measure(make(tmp_path, 8_000, 6_000, "JPEG"))

    assert cost["outcome"] == [images.MAX_SIDE, 1200]
    # Whole, it would be 144 MB of RGB pixels; drafted at a quarter of its side, 9 MB.
    assert cost["peak_kb"] * 1024 < 60 * MB, cost


def test_the_largest_png_accepted_costs_a_bounded_memory(tmp_path):
    cost = measure(make(tmp_path, 6_000, 4_000, "PNG"))  # 24 million pixels

    assert cost["outcome"] == [images.MAX_SIDE, 1067]
    assert cost["peak_kb"] * 1024 < 160 * MB, cost


def test_a_png_just_past_the_limit_is_refused(tmp_path):
    cost = measure(make(tmp_path, 6_000, 4_001, "PNG"))

    assert "24 au plus" in cost["outcome"]
    assert cost["peak_kb"] * 1024 < 20 * MB
