"""Synthetic ADE20K scenes: rooms (ceiling, wall, floor, window, curtains, door, painting, bed,
table, cabinet, lamp, person) and streets (sky, mountain, building, window, grass, road,
sidewalk, tree, car, person), 20 of the 150 classes, with blobs of "other"; raw ADE20K values
(0 = other, class k as k + 1).
"""
import numpy as np

from .scene import GLASS as _GLASS
from .scene import SKIN as _SKIN
from .scene import TYRE as _TYRE
from .scene import WHITE as _WHITE
from .scene import Scene, finish
from .scene import rect as _rect

__all__ = ["render_ade20k"]

# ADE20K raw annotation values (class index + 1) used by the scenes; 0 is "other".
OTHER = 0
ADE_WALL, ADE_BUILDING, ADE_SKY, ADE_FLOOR, ADE_TREE, ADE_CEILING = 1, 2, 3, 4, 5, 6
ADE_ROAD, ADE_BED, ADE_WINDOWPANE, ADE_GRASS, ADE_CABINET, ADE_SIDEWALK = 7, 8, 9, 10, 11, 12
ADE_PERSON = 13
ADE_DOOR, ADE_TABLE, ADE_MOUNTAIN, ADE_CURTAIN, ADE_CAR, ADE_PAINTING, ADE_LAMP = (
    15, 16, 17, 19, 21, 23, 37)

# As _STYLE, per ADE20K raw value.
_ADE_STYLE = {
    OTHER: ((128, 110, 90), 60, (8, 12, 0, 0, 0)),
    ADE_WALL: ((200, 190, 170), 20, (3, 6, 0, 0, 0)),
    ADE_BUILDING: ((150, 110, 90), 30, (4, 8, 0, 6, 0)),
    ADE_SKY: ((120, 170, 225), 15, (1, 5, 25, 0, 0)),
    ADE_FLOOR: ((150, 100, 60), 20, (5, 6, 0, 0, 12)),
    ADE_TREE: ((50, 120, 40), 20, (20, 12, 0, 0, 0)),
    ADE_CEILING: ((235, 235, 225), 10, (2, 4, 10, 0, 0)),
    ADE_ROAD: ((90, 90, 95), 10, (10, 6, 0, 0, 0)),
    ADE_BED: ((190, 60, 80), 30, (3, 6, 0, 10, 0)),
    ADE_WINDOWPANE: ((150, 200, 230), 20, (2, 4, 12, 0, 0)),
    ADE_GRASS: ((110, 190, 60), 20, (16, 10, 0, 0, 0)),
    ADE_CABINET: ((120, 75, 40), 20, (3, 5, 0, 0, 8)),
    ADE_SIDEWALK: ((175, 165, 150), 15, (5, 6, 0, 7, 7)),
    ADE_PERSON: ((220, 60, 60), 40, (4, 8, 0, 0, 0)),
    ADE_DOOR: ((100, 60, 30), 20, (3, 5, 0, 0, 10)),
    ADE_TABLE: ((170, 120, 70), 20, (3, 5, 0, 8, 0)),
    ADE_MOUNTAIN: ((110, 100, 130), 20, (6, 14, 0, 0, 0)),
    ADE_CURTAIN: ((140, 60, 160), 30, (3, 4, 0, 0, 16)),
    ADE_CAR: ((30, 50, 170), 45, (2, 4, 10, 0, 0)),
    ADE_PAINTING: ((230, 180, 40), 40, (12, 16, 0, 0, 0)),
    ADE_LAMP: ((250, 240, 150), 15, (2, 2, 0, 0, 0)),
}


def _ade_person(s, x, foot, height):
    """A standing person, ``height`` pixels tall, feet at row ``foot``."""
    idx = s.new(ADE_PERSON)
    half = height * 0.14
    s.fill(idx, [_rect(x - half, foot - height * 0.8, x + half, foot - height * 0.4),
                 _rect(x - half, foot - height * 0.4, x - half * 0.2, foot),
                 _rect(x + half * 0.2, foot - height * 0.4, x + half, foot)])
    s.disc(s.new(ADE_PERSON, _SKIN), (x, foot - height * 0.9), height * 0.1)


def _ade_blobs(s):
    """One or two regions of "other" (raw 0): objects outside the 150 classes."""
    for _ in range(s.rng.integers(1, 3)):
        centre = (s.rng.uniform(0, s.w), s.rng.uniform(0.3, 1.0) * s.h)
        s.ellipse(s.new(OTHER), centre, (s.rng.uniform(0.03, 0.08) * s.w,
                                         s.rng.uniform(0.03, 0.08) * s.h))


def _ade_outdoor(s):
    """Sky, mountains, buildings with windows, grass, a road with sidewalks, trees, cars, people."""
    rng, h, w, y0 = s.rng, s.h, s.w, s.y0
    s.fill(s.new(ADE_SKY), [_rect(0, 0, w, y0 + 1)])
    if rng.random() < 0.5:
        ridge = [(x, y0 - rng.uniform(0.05, 0.2) * h) for x in np.linspace(0, w, 6)]
        s.fill(s.new(ADE_MOUNTAIN), [[(0, y0 + 1)] + ridge + [(w, y0 + 1)]])
    x = rng.uniform(-0.1, 0.1) * w
    while x < w:
        width, top = rng.uniform(0.12, 0.3) * w, y0 - rng.uniform(0.1, 0.35) * h
        s.fill(s.new(ADE_BUILDING), [_rect(x, top, x + width, y0 + 2)])
        panes = [_rect(px, py, px + width * 0.12, py + h * 0.04)
                 for px in np.arange(x + width * 0.1, x + width * 0.85, width * 0.25)
                 for py in np.arange(top + h * 0.03, y0 - h * 0.05, h * 0.08)]
        if panes:
            s.fill(s.new(ADE_WINDOWPANE), panes)
        x += width + rng.uniform(0, 0.1) * w
    s.fill(s.new(ADE_GRASS), [_rect(0, y0, w, h)])
    vx = s.vx
    for sign in (-1, 1):
        s.fill(s.new(ADE_SIDEWALK), [[(vx + sign * 0.02 * w, y0), (vx + sign * 0.05 * w, y0),
                                      (vx + sign * 0.95 * w, h), (vx + sign * 0.6 * w, h)]])
    s.fill(s.new(ADE_ROAD), [[(vx - 0.02 * w, y0), (vx + 0.02 * w, y0), (vx + 0.6 * w, h),
                              (vx - 0.6 * w, h)]])
    for _ in range(rng.integers(1, 4)):
        tx, foot = rng.uniform(0, w), y0 + rng.uniform(0.05, 0.3) * h
        size = (foot - y0) * rng.uniform(1.0, 1.6)
        tree = s.new(ADE_TREE, (90, 70, 45))
        s.fill(tree, [_rect(tx - size * 0.05, foot - size * 0.6, tx + size * 0.05, foot)])
        s.ellipse(s.new(ADE_TREE), (tx, foot - size * 0.75), (size * 0.3, size * 0.3))
    for _ in range(rng.integers(1, 3)):
        foot = y0 + rng.uniform(0.2, 0.6) * (h - y0)
        size = (foot - y0) * 0.5
        cx = vx + rng.uniform(-0.4, 0.4) * (foot - y0) / (h - y0) * w
        car = s.new(ADE_CAR)
        s.fill(car, [_rect(cx - size, foot - size * 0.6, cx + size, foot - size * 0.15)])
        s.fill(s.new(ADE_CAR, _GLASS), [_rect(cx - size * 0.6, foot - size * 0.9,
                                              cx + size * 0.6, foot - size * 0.6)])
        tyres = s.new(ADE_CAR, _TYRE)
        for dx in (-0.6, 0.6):
            s.disc(tyres, (cx + dx * size, foot - size * 0.15), size * 0.18)
    for _ in range(rng.integers(0, 3)):
        foot = y0 + rng.uniform(0.3, 0.9) * (h - y0)
        _ade_person(s, rng.uniform(0, w), foot, (foot - y0) * 0.9)
    _ade_blobs(s)


def _ade_indoor(s):
    """Ceiling, walls, floor, a window with curtains, a door, a painting, furniture, a lamp."""
    rng, h, w = s.rng, s.h, s.w
    top, base = rng.uniform(0.1, 0.22) * h, rng.uniform(0.6, 0.75) * h
    s.fill(s.new(ADE_CEILING), [_rect(0, 0, w, top)])
    s.fill(s.new(ADE_WALL), [_rect(0, top, w, base)])
    s.fill(s.new(ADE_FLOOR), [_rect(0, base, w, h)])
    wx, ww = rng.uniform(0.05, 0.5) * w, rng.uniform(0.15, 0.3) * w
    wy0, wy1 = top + rng.uniform(0.05, 0.15) * h, base - rng.uniform(0.15, 0.25) * h
    s.fill(s.new(ADE_WINDOWPANE), [_rect(wx, wy0, wx + ww, wy1)])
    if rng.random() < 0.6:
        curtain = s.new(ADE_CURTAIN)
        s.fill(curtain, [_rect(wx - ww * 0.2, wy0 - h * 0.03, wx + ww * 0.1, wy1 + h * 0.05),
                         _rect(wx + ww * 0.9, wy0 - h * 0.03, wx + ww * 1.2, wy1 + h * 0.05)])
    dx = (wx + ww * 1.4 + rng.uniform(0, 0.2) * w) % (w * 0.9)
    s.fill(s.new(ADE_DOOR), [_rect(dx, top + 0.1 * h, dx + 0.12 * w, base)])
    if rng.random() < 0.7:
        px, py = rng.uniform(0, 0.8) * w, top + rng.uniform(0.03, 0.1) * h
        s.fill(s.new(ADE_PAINTING), [_rect(px, py, px + 0.15 * w, py + 0.12 * h)])
    for _ in range(rng.integers(1, 3)):
        kind = (ADE_BED, ADE_TABLE, ADE_CABINET)[rng.integers(3)]
        fx, foot = rng.uniform(0, 0.7) * w, base + rng.uniform(0.1, 0.8) * (h - base)
        size = (0.15 + 0.25 * (foot - base) / (h - base)) * w
        item = s.new(kind)
        if kind == ADE_BED:
            s.fill(item, [_rect(fx, foot - size * 0.35, fx + size * 1.3, foot)])
            s.fill(s.new(ADE_BED, _WHITE), [_rect(fx, foot - size * 0.45, fx + size * 0.3,
                                                  foot - size * 0.3)])
        elif kind == ADE_TABLE:
            s.fill(item, [_rect(fx, foot - size * 0.5, fx + size, foot - size * 0.42),
                          _rect(fx + size * 0.05, foot - size * 0.42, fx + size * 0.1, foot),
                          _rect(fx + size * 0.9, foot - size * 0.42, fx + size * 0.95, foot)])
        else:
            s.fill(item, [_rect(fx, foot - size * 0.9, fx + size * 0.5, foot)])
    if rng.random() < 0.5:
        lx, foot = rng.uniform(0.1, 0.9) * w, base + rng.uniform(0.1, 0.5) * (h - base)
        lamp = s.new(ADE_LAMP)
        s.fill(lamp, [_rect(lx - 0.005 * w - 1, foot - 0.25 * h, lx + 0.005 * w + 1, foot)])
        s.ellipse(lamp, (lx, foot - 0.27 * h), (0.04 * w, 0.03 * h))
    if rng.random() < 0.5:
        foot = base + rng.uniform(0.3, 1.0) * (h - base)
        _ade_person(s, rng.uniform(0.1, 0.9) * w, foot, foot - top * 1.5)
    _ade_blobs(s)


def render_ade20k(rng, height, width, index):
    """(RGB uint8 (H, W, 3), ADE20K raw labels uint8 (H, W)) of one scene: even indices are
    indoor rooms, odd ones outdoor streets."""
    s = Scene(rng, height, width, styles=_ADE_STYLE)
    (_ade_indoor if index % 2 == 0 else _ade_outdoor)(s)
    return finish(s), s.labels()
