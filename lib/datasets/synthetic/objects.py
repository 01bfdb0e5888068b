"""Synthetic photos of things and stuff, for the PASCAL-Context, COCO-Stuff and PASCAL VOC sets.

Even indices are outdoor views (sky, mountains, buildings, trees, grass or road, water; people,
cars, buses, animals, bicycles, boats, aeroplanes), odd ones rooms (ceiling, wall, window, floor;
people, chairs, tables, sofas, bottles, screens, potted plants, cats, dogs), both with blobs of
no class.  A scene is drawn in roles ("sky", "car", ...); a :class:`Vocabulary` says which
stored label value each role has in a dataset (None: the dataset's value 0, background or
unlabelled).  VOC-style labels also get the void (255) outline around objects.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from .scene import GLASS, SKIN, TYRE, Scene, finish, rect

__all__ = ["Vocabulary", "render_objects", "ROLES"]

# Style of each role: base colour (RGB), colour jitter, texture amplitudes (see scene.py).
_LOOKS = {
    "background": ((130, 115, 95), 60, (8, 12, 0, 0, 0)),
    "sky": ((115, 165, 225), 15, (1, 5, 25, 0, 0)),
    "mountain": ((105, 100, 125), 20, (6, 14, 0, 0, 0)),
    "building": ((150, 115, 95), 30, (4, 8, 0, 6, 0)),
    "tree": ((55, 120, 45), 20, (20, 12, 0, 0, 0)),
    "grass": ((105, 185, 65), 20, (16, 10, 0, 0, 0)),
    "road": ((95, 92, 98), 10, (10, 6, 0, 0, 0)),
    "water": ((50, 95, 165), 20, (4, 8, 10, 6, 0)),
    "ceiling": ((232, 230, 222), 10, (2, 4, 10, 0, 0)),
    "wall": ((200, 188, 165), 20, (3, 6, 0, 0, 0)),
    "window": ((155, 200, 230), 20, (2, 4, 12, 0, 0)),
    "floor": ((150, 100, 62), 20, (5, 6, 0, 0, 12)),
    "person": ((215, 60, 65), 40, (4, 8, 0, 0, 0)),
    "car": ((35, 55, 170), 45, (2, 4, 10, 0, 0)),
    "bus": ((230, 170, 30), 25, (2, 4, 8, 0, 0)),
    "dog": ((150, 105, 60), 30, (8, 8, 0, 0, 0)),
    "cat": ((120, 120, 115), 35, (10, 8, 0, 0, 0)),
    "horse": ((115, 70, 40), 25, (4, 6, 0, 0, 0)),
    "sheep": ((225, 222, 210), 15, (14, 6, 0, 0, 0)),
    "cow": ((60, 50, 45), 30, (6, 12, 0, 0, 0)),
    "bird": ((40, 40, 45), 30, (4, 4, 0, 0, 0)),
    "bicycle": ((170, 30, 60), 30, (3, 4, 0, 0, 0)),
    "boat": ((235, 235, 235), 20, (3, 4, 0, 6, 0)),
    "aeroplane": ((205, 210, 215), 15, (2, 4, 8, 0, 0)),
    "chair": ((120, 70, 35), 25, (3, 5, 0, 0, 8)),
    "table": ((175, 125, 75), 20, (3, 5, 0, 8, 0)),
    "sofa": ((140, 50, 95), 35, (4, 6, 0, 10, 0)),
    "bottle": ((35, 140, 70), 30, (2, 3, 12, 0, 0)),
    "tvmonitor": ((30, 30, 35), 10, (2, 3, 0, 0, 0)),
    "pottedplant": ((60, 150, 50), 20, (18, 10, 0, 0, 0)),
}
ROLES = tuple(_LOOKS)
_OUTDOOR = ("person", "car", "bus", "dog", "horse", "sheep", "cow", "bicycle", "boat", "bird",
            "aeroplane")
_INDOOR = ("person", "chair", "table", "sofa", "bottle", "tvmonitor", "pottedplant", "cat", "dog")
_VOID = 255


@dataclass(frozen=True)
class Vocabulary:
    """How one dataset stores the roles: ``values`` maps a role to its stored value (roles not
    in it are stored as 0); ``void_outline`` draws VOC's 255 band around objects."""

    values: dict
    void_outline: bool = False

    def raw(self, role):
        return self.values.get(role, 0)


def _new(s, voc, role, colour=None, shade=1.0):
    return s.new(voc.raw(role), colour, shade, style=_LOOKS[role])


def _figure(s, voc, x, foot, height):
    """A standing person, ``height`` pixels tall, feet at row ``foot``."""
    body, half = _new(s, voc, "person"), height * 0.15
    s.fill(body, [rect(x - half, foot - height * 0.8, x + half, foot - height * 0.42),
                  rect(x - half * 1.5, foot - height * 0.78, x - half, foot - height * 0.5),
                  rect(x + half, foot - height * 0.78, x + half * 1.5, foot - height * 0.5)])
    legs = _new(s, voc, "person", (50, 50, 80))
    s.fill(legs, [rect(x - half, foot - height * 0.42, x - half * 0.15, foot),
                  rect(x + half * 0.15, foot - height * 0.42, x + half, foot)])
    s.disc(_new(s, voc, "person", SKIN), (x, foot - height * 0.9), height * 0.1)


def _vehicle(s, voc, role, x, foot, size):
    long = 2.2 if role == "bus" else 1.0
    body = _new(s, voc, role)
    s.fill(body, [rect(x - size * long, foot - size * (1.1 if role == "bus" else 0.6),
                       x + size * long, foot - size * 0.15)])
    glass = _new(s, voc, role, GLASS)
    top = foot - size * (1.0 if role == "bus" else 0.9)
    s.fill(glass, [rect(x - size * long * 0.7, top, x + size * long * 0.7, foot - size * 0.6)])
    tyres = _new(s, voc, role, TYRE)
    for dx in (-0.65, 0.65):
        s.disc(tyres, (x + dx * size * long, foot - size * 0.15), size * 0.18)


def _animal(s, voc, role, x, foot, size):
    """Body, head and legs of a four-legged animal, or a bird (body, head, wing)."""
    body = _new(s, voc, role)
    if role == "bird":
        s.ellipse(body, (x, foot - size * 0.3), (size * 0.45, size * 0.22))
        s.disc(body, (x + size * 0.45, foot - size * 0.45), size * 0.15)
        s.fill(body, [[(x - size * 0.2, foot - size * 0.35), (x + size * 0.1, foot - size * 0.35),
                       (x - size * 0.3, foot - size * 0.9)]])
        return
    s.ellipse(body, (x, foot - size * 0.65), (size * 0.6, size * 0.28))
    s.disc(body, (x + size * 0.65, foot - size * 0.95), size * 0.2)
    s.fill(body, [rect(x + dx * size, foot - size * 0.5, x + (dx + 0.12) * size, foot)
                  for dx in (-0.5, -0.3, 0.25, 0.42)])


def _bicycle(s, voc, x, foot, size):
    frame = _new(s, voc, "bicycle")
    rear, front = (x - size * 0.55, foot - size * 0.34), (x + size * 0.55, foot - size * 0.34)
    for centre in (rear, front):
        s.disc(frame, centre, size * 0.32, thickness=max(size * 0.07, 1))
    seat, bar = (x - size * 0.15, foot - size * 0.95), (x + size * 0.4, foot - size * 1.05)
    s.stroke(frame, [rear, seat, (x, foot - size * 0.4), rear], max(size * 0.06, 1))
    s.stroke(frame, [seat, bar, front], max(size * 0.06, 1))


def _boat(s, voc, x, foot, size):
    hull = _new(s, voc, "boat")
    s.fill(hull, [[(x - size, foot - size * 0.35), (x + size, foot - size * 0.35),
                   (x + size * 0.7, foot), (x - size * 0.7, foot)]])
    s.fill(hull, [rect(x - size * 0.04, foot - size * 1.2, x + size * 0.04, foot - size * 0.35)])


def _aeroplane(s, voc, x, y, size):
    plane = _new(s, voc, "aeroplane")
    s.ellipse(plane, (x, y), (size, size * 0.14))
    s.fill(plane, [[(x - size * 0.1, y), (x + size * 0.25, y), (x - size * 0.3, y + size * 0.6)],
                   [(x - size * 0.85, y), (x - size * 0.7, y), (x - size * 0.95, y - size * 0.4)]])


def _furniture(s, voc, role, x, foot, size):
    item = _new(s, voc, role)
    if role == "chair":
        s.fill(item, [rect(x, foot - size * 0.5, x + size * 0.5, foot - size * 0.42),
                      rect(x, foot - size, x + size * 0.07, foot),
                      rect(x + size * 0.43, foot - size * 0.5, x + size * 0.5, foot)])
    elif role == "table":
        s.fill(item, [rect(x, foot - size * 0.5, x + size * 1.2, foot - size * 0.42),
                      rect(x + size * 0.05, foot - size * 0.42, x + size * 0.11, foot),
                      rect(x + size * 1.09, foot - size * 0.42, x + size * 1.15, foot)])
    elif role == "sofa":
        s.fill(item, [rect(x, foot - size * 0.7, x + size * 1.4, foot - size * 0.05),
                      rect(x - size * 0.1, foot - size * 0.45, x + size * 1.5, foot)])
    elif role == "tvmonitor":
        s.fill(item, [rect(x, foot - size * 0.8, x + size * 0.9, foot - size * 0.25),
                      rect(x + size * 0.4, foot - size * 0.25, x + size * 0.5, foot)])
        s.fill(_new(s, voc, role, (60, 90, 140)),
               [rect(x + size * 0.06, foot - size * 0.74, x + size * 0.84, foot - size * 0.31)])
    elif role == "bottle":
        s.fill(item, [rect(x, foot - size * 0.6, x + size * 0.18, foot),
                      rect(x + size * 0.06, foot - size * 0.8, x + size * 0.12, foot - size * 0.6)])
    else:  # pottedplant
        s.fill(_new(s, voc, role, (170, 90, 50)),
               [rect(x, foot - size * 0.3, x + size * 0.35, foot)])
        s.ellipse(item, (x + size * 0.17, foot - size * 0.55), (size * 0.3, size * 0.3))


def _draw(s, voc, role, x, foot, size):
    if role == "person":
        _figure(s, voc, x, foot, size * 1.8)
    elif role in ("car", "bus"):
        _vehicle(s, voc, role, x, foot, size)
    elif role in ("dog", "cat", "horse", "sheep", "cow", "bird"):
        _animal(s, voc, role, x, foot, size * (1.3 if role in ("horse", "cow") else 1.0))
    elif role == "bicycle":
        _bicycle(s, voc, x, foot, size)
    elif role == "boat":
        _boat(s, voc, x, foot, size)
    elif role == "aeroplane":
        _aeroplane(s, voc, x, foot - s.h * 0.6, size)
    else:
        _furniture(s, voc, role, x, foot, size)


def _outdoor(s, voc):
    rng, h, w, y0 = s.rng, s.h, s.w, s.y0
    s.fill(_new(s, voc, "sky"), [rect(0, 0, w, y0 + 1)])
    if rng.random() < 0.6:
        ridge = [(x, y0 - rng.uniform(0.05, 0.2) * h) for x in np.linspace(0, w, 6)]
        s.fill(_new(s, voc, "mountain"), [[(0, y0 + 1)] + ridge + [(w, y0 + 1)]])
    x = rng.uniform(-0.2, 0.3) * w
    while x < w:
        width = rng.uniform(0.1, 0.3) * w
        if rng.random() < 0.5:
            s.fill(_new(s, voc, "building"), [rect(x, y0 - rng.uniform(0.1, 0.3) * h,
                                                   x + width, y0 + 2)])
        else:
            s.ellipse(_new(s, voc, "tree"), (x + width / 2, y0 - 0.05 * h),
                      (width / 2, rng.uniform(0.08, 0.2) * h))
        x += width + rng.uniform(0, 0.2) * w
    ground = "grass" if rng.random() < 0.5 else "road"
    s.fill(_new(s, voc, ground), [rect(0, y0, w, h)])
    water = rng.random() < 0.4
    if water:
        s.fill(_new(s, voc, "water"), [rect(0, y0, w, y0 + (h - y0) * rng.uniform(0.3, 0.5))])
    return _OUTDOOR if water else tuple(r for r in _OUTDOOR if r != "boat")


def _indoor(s, voc):
    rng, h, w = s.rng, s.h, s.w
    top, base = rng.uniform(0.08, 0.2) * h, rng.uniform(0.55, 0.7) * h
    s.fill(_new(s, voc, "ceiling"), [rect(0, 0, w, top)])
    s.fill(_new(s, voc, "wall"), [rect(0, top, w, base)])
    s.fill(_new(s, voc, "floor"), [rect(0, base, w, h)])
    wx, ww = rng.uniform(0.05, 0.6) * w, rng.uniform(0.15, 0.3) * w
    s.fill(_new(s, voc, "window"), [rect(wx, top + 0.08 * h, wx + ww, base - 0.15 * h)])
    s.y0 = base
    return _INDOOR


def _void_outline(labels, objects):
    """VOC's void band: 255 in a band around ``objects`` (values of object classes), 1% of the
    short side wide and at least a pixel; the objects keep all their pixels."""
    thickness = max(min(labels.shape) // 100, 1)
    kernel = np.ones((2 * thickness + 1,) * 2, np.uint8)
    mask = np.isin(labels, objects).astype(np.uint8)
    band = (cv2.dilate(mask, kernel) > 0) & (mask == 0)
    return np.where(band, np.uint8(_VOID), labels)


def render_objects(rng, height, width, index, vocabulary):
    """(RGB uint8 (H, W, 3), stored labels uint8 (H, W)) of one scene in ``vocabulary``'s
    values: outdoor for even ``index``, a room for odd; blobs of no class, then one to three
    objects far to near."""
    s = Scene(rng, height, width, {0: _LOOKS["background"]})
    candidates = (_outdoor if index % 2 == 0 else _indoor)(s, vocabulary)
    for _ in range(rng.integers(1, 3)):
        centre = (rng.uniform(0, s.w), rng.uniform(0.2, 1.0) * s.h)
        s.ellipse(_new(s, vocabulary, "background"), centre,
                  (rng.uniform(0.03, 0.07) * s.w, rng.uniform(0.03, 0.07) * s.h))
    roles = [candidates[(index // 2 + k) % len(candidates)] for k in range(rng.integers(1, 4))]
    feet = np.sort(rng.uniform(0.15, 0.95, len(roles)))
    for role, t in zip(roles, feet, strict=True):
        foot = s.y0 + t * (s.h - s.y0)
        size = (0.15 + 0.3 * t) * min(s.h, s.w)
        _draw(s, vocabulary, role, rng.uniform(0.1, 0.75) * s.w, foot, size)
    labels = s.labels()
    if vocabulary.void_outline:
        objects = [vocabulary.raw(r) for r in _OUTDOOR + _INDOOR if vocabulary.raw(r)]
        labels = _void_outline(labels, objects)
    return finish(s), labels
