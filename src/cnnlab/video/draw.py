"""Drawing on video frames (Pillow): boxes with class, score and track id; a caption; counting lines and regions.

>>> import numpy as np
>>> rgb = np.zeros((40, 60, 3), dtype=np.uint8)
>>> out = annotate(rgb, {"boxes": [{"class": "7", "score": 0.9, "box": [5, 5, 30, 30], "track": 2}]})
>>> out.shape, out.dtype, bool(out.any())
((40, 60, 3), dtype('uint8'), True)
"""

from __future__ import annotations

import numpy as np

# Distinct colours for track ids (and lime for untracked boxes).
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255)]
UNTRACKED = (0, 255, 0)
COUNT_COLOR = (255, 255, 255)


def _label(d: dict) -> str:
    text = f"{d['class']} {d['score']:.2f}"
    return f"#{d['track']} {text}" if "track" in d else text


def annotate(rgb: np.ndarray, record: dict | None, lines=(), regions=(), counts: list[str] | None = None) -> np.ndarray:
    """A copy of the (H, W, 3) frame with ``record``'s boxes (or top classes), the lines/regions and count texts."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    h, w = rgb.shape[:2]
    width = max(1, round(max(h, w) / 250))
    for line in lines:
        draw.line([line[:2], line[2:]], fill=COUNT_COLOR, width=width)
    for polygon in regions:
        draw.polygon(polygon, outline=COUNT_COLOR, width=width)
    if record is not None:
        for d in record.get("boxes", []):
            color = PALETTE[(d["track"] - 1) % len(PALETTE)] if "track" in d else UNTRACKED
            x1, y1, x2, y2 = d["box"]
            draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=color, width=width)
            draw.text((x1 + 1, max(0, y1 - 11)), _label(d), fill=color)
        if "top" in record:
            caption = "  ".join(f"{t['class']} {t['probability']:.2f}" for t in record["top"])
            draw.rectangle([0, 0, w, 12], fill=(0, 0, 0))
            draw.text((2, 1), caption, fill=COUNT_COLOR)
    for i, text in enumerate(counts or []):
        y = h - 12 * (len(counts) - i)
        draw.rectangle([0, y, min(w, 6 * len(text) + 4), y + 12], fill=(0, 0, 0))
        draw.text((2, y + 1), text, fill=COUNT_COLOR)
    return np.asarray(img)
