"""Synthetic LIP images: one person facing the camera, parsed into the 20 LIP classes.

The person stands on a textured backdrop (background, 0) and wears one of four outfits by image
index: upper-clothes and pants; a coat, a skirt and bare legs; a dress and bare legs; a
jumpsuit; with a hat, sunglasses, a scarf, gloves or socks now and then.  Facing the camera, the
person's left arm, leg and shoe (14, 16, 18) are on the right of the image and the right ones
(15, 17, 19) on the left, as in LIP's annotations.
"""
from .scene import SKIN, Scene, finish, rect

__all__ = ["render_person", "LIP_VALUES"]

LIP_VALUES = {"background": 0, "hat": 1, "hair": 2, "glove": 3, "sunglasses": 4,
              "upper-clothes": 5, "dress": 6, "coat": 7, "socks": 8, "pants": 9, "jumpsuits": 10,
              "scarf": 11, "skirt": 12, "face": 13, "left-arm": 14, "right-arm": 15,
              "left-leg": 16, "right-leg": 17, "left-shoe": 18, "right-shoe": 19}

_STYLES = {
    0: ((150, 140, 125), 60, (8, 14, 12, 0, 0)),
    1: ((40, 40, 120), 30, (3, 4, 0, 0, 0)),
    2: ((50, 35, 25), 20, (8, 6, 0, 0, 0)),
    3: ((230, 230, 230), 20, (2, 2, 0, 0, 0)),
    4: ((20, 20, 20), 10, (1, 1, 0, 0, 0)),
    5: ((200, 60, 60), 50, (3, 6, 0, 6, 0)),
    6: ((210, 90, 170), 40, (3, 6, 0, 0, 0)),
    7: ((90, 80, 60), 30, (4, 6, 0, 0, 10)),
    8: ((240, 240, 240), 15, (2, 2, 0, 0, 0)),
    9: ((40, 50, 110), 30, (4, 6, 0, 0, 0)),
    10: ((60, 130, 110), 30, (3, 6, 0, 0, 0)),
    11: ((220, 200, 40), 30, (3, 3, 0, 8, 0)),
    12: ((120, 40, 100), 30, (3, 5, 0, 0, 8)),
    13: (SKIN, 20, (2, 4, 0, 0, 0)),
    14: (SKIN, 20, (2, 4, 6, 0, 0)),
    15: (SKIN, 20, (2, 4, 6, 0, 0)),
    16: (SKIN, 20, (2, 4, 6, 0, 0)),
    17: (SKIN, 20, (2, 4, 6, 0, 0)),
    18: ((60, 40, 30), 25, (2, 3, 0, 0, 0)),
    19: ((60, 40, 30), 25, (2, 3, 0, 0, 0)),
}
_OUTFITS = (("upper-clothes", "pants"), ("coat", "skirt"), ("dress", None), ("jumpsuits", None))


def _backdrop(s):
    """Floor and wall of the background, and a blob of clutter."""
    rng = s.rng
    s.fill(s.new(0, (110, 100, 90)), [rect(0, s.h * rng.uniform(0.75, 0.9), s.w, s.h)])
    s.ellipse(s.new(0, (90, 120, 150)), (rng.uniform(0, s.w), rng.uniform(0, s.h)),
              (s.w * rng.uniform(0.1, 0.25), s.h * rng.uniform(0.1, 0.25)))


def _limbs(s, cx, top, height, half, bare_legs, rng):
    """Arms (left one on the image's right) with gloves now and then, and legs."""
    shoulder, hand = top + height * 0.25, top + height * 0.55
    for side, arm in ((1, "left-arm"), (-1, "right-arm")):
        idx = s.new(LIP_VALUES[arm])
        x0 = cx + side * half
        s.stroke(idx, [(x0, shoulder), (x0 + side * half * 0.45, hand)], max(half * 0.35, 1))
        if rng.random() < 0.2:
            s.disc(s.new(LIP_VALUES["glove"]), (x0 + side * half * 0.45, hand), half * 0.2)
    hip, ankle = top + height * 0.55, top + height * 0.95
    for side, leg, shoe in ((1, "left-leg", "left-shoe"), (-1, "right-leg", "right-shoe")):
        x0, x1 = cx + side * half * 0.12, cx + side * half * 0.8
        if bare_legs:
            s.fill(s.new(LIP_VALUES[leg]), [rect(min(x0, x1), hip, max(x0, x1), ankle)])
        if rng.random() < 0.3:
            s.fill(s.new(LIP_VALUES["socks"]), [rect(min(x0, x1), ankle - height * 0.05,
                                                     max(x0, x1), ankle)])
        s.fill(s.new(LIP_VALUES[shoe]), [rect(min(x0, x1) - half * 0.1 * (side < 0), ankle,
                                              max(x0, x1) + half * 0.1 * (side > 0),
                                              ankle + height * 0.04)])


def _head(s, cx, top, height, rng):
    r = height * 0.07
    centre = (cx, top + height * 0.1)
    s.ellipse(s.new(LIP_VALUES["hair"]), (cx, centre[1] - r * 0.3), (r * 1.15, r * 1.2))
    s.disc(s.new(LIP_VALUES["face"]), centre, r)
    if rng.random() < 0.3:
        s.fill(s.new(LIP_VALUES["hat"]), [rect(cx - r * 1.3, centre[1] - r * 1.5, cx + r * 1.3,
                                               centre[1] - r * 0.6)])
    if rng.random() < 0.3:
        s.fill(s.new(LIP_VALUES["sunglasses"]), [rect(cx - r * 0.8, centre[1] - r * 0.3,
                                                      cx + r * 0.8, centre[1] + r * 0.05)])


def render_person(rng, height, width, index):
    """(RGB uint8 (H, W, 3), LIP labels uint8 (H, W)) of one person; ``index`` picks the
    outfit."""
    s = Scene(rng, height, width, _STYLES)
    _backdrop(s)
    size = height * rng.uniform(0.75, 0.92)
    top = (height - size) * rng.uniform(0.2, 0.8)
    cx, half = width * rng.uniform(0.4, 0.6), size * 0.12
    upper, lower = _OUTFITS[index % len(_OUTFITS)]
    _limbs(s, cx, top, size, half, lower != "pants" and upper != "jumpsuits", rng)
    length = {"dress": 0.75, "jumpsuits": 0.9}.get(upper, 0.55)
    s.fill(s.new(LIP_VALUES[upper]), [rect(cx - half, top + size * 0.18, cx + half,
                                           top + size * length)])
    if lower == "pants":
        s.fill(s.new(LIP_VALUES["pants"]), [rect(cx - half * 0.85, top + size * 0.55,
                                                 cx + half * 0.85, top + size * 0.92)])
    elif lower == "skirt":
        s.fill(s.new(LIP_VALUES["skirt"]), [[(cx - half, top + size * 0.52),
                                             (cx + half, top + size * 0.52),
                                             (cx + half * 1.3, top + size * 0.72),
                                             (cx - half * 1.3, top + size * 0.72)]])
    if rng.random() < 0.25:
        s.fill(s.new(LIP_VALUES["scarf"]), [rect(cx - half * 0.7, top + size * 0.17,
                                                 cx + half * 0.7, top + size * 0.22)])
    _head(s, cx, top, size, rng)
    return finish(s), s.labels()
