"""Synthetic street scenes in Cityscapes label ids (the Cityscapes and ACDC sets).

Streets seen from a car, drawn in perspective from planar pieces: sky, road with lane markings,
sidewalks, terrain, building facades with windows, walls, fences, hedges and trees, poles with
traffic lights and signs, persons, riders on bicycles and motorcycles, cars, trucks, buses, trams,
and void regions (ego vehicle 1, static 4, dynamic 5, parking 9, unlabeled 0).  Every image holds
most of the 19 classes; truck, bus and train take turns, so any three consecutive images are drawn
with all 19 (a small object can still be hidden behind a nearer one).  ACDC images take the look
of their condition (fog, night, rain, snow).
"""
from functools import partial

import cv2
import numpy as np

from .scene import GLASS as _GLASS
from .scene import SKIN as _SKIN
from .scene import TYRE as _TYRE
from .scene import WHITE as _WHITE
from .scene import Scene, finish

__all__ = ["render"]

# Cityscapes label ids used by the scenes.
UNLABELED, EGO_VEHICLE, STATIC, DYNAMIC, PARKING = 0, 1, 4, 5, 9
ROAD, SIDEWALK, BUILDING, WALL, FENCE = 7, 8, 11, 12, 13
POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY = 17, 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = 24, 25, 26, 27, 28, 31, 32, 33

# Base colour (RGB), per-channel colour jitter of an instance, and texture amplitudes
# (fine noise, coarse noise, vertical ramp, horizontal stripes, vertical stripes) per label id.
_STYLE = {
    UNLABELED: ((90, 80, 70), 40, (6, 10, 0, 0, 0)),
    EGO_VEHICLE: ((35, 35, 40), 10, (2, 4, 10, 0, 0)),
    STATIC: ((125, 95, 60), 30, (4, 6, 0, 0, 0)),
    DYNAMIC: ((190, 185, 80), 30, (4, 6, 0, 0, 0)),
    PARKING: ((150, 110, 120), 15, (8, 6, 0, 0, 0)),
    ROAD: ((100, 92, 104), 12, (9, 7, 0, 0, 0)),
    SIDEWALK: ((185, 150, 170), 15, (5, 6, 0, 7, 7)),
    BUILDING: ((115, 100, 88), 40, (4, 9, 0, 5, 0)),
    WALL: ((135, 135, 175), 20, (6, 6, 0, 14, 0)),
    FENCE: ((190, 160, 130), 20, (3, 4, 0, 0, 30)),
    POLE: ((165, 165, 165), 15, (2, 2, 0, 0, 0)),
    TRAFFIC_LIGHT: ((245, 175, 30), 15, (2, 2, 0, 0, 0)),
    TRAFFIC_SIGN: ((230, 225, 20), 20, (2, 2, 0, 0, 0)),
    VEGETATION: ((75, 135, 40), 20, (20, 14, 0, 0, 0)),
    TERRAIN: ((165, 200, 110), 20, (12, 10, 0, 0, 0)),
    SKY: ((105, 155, 215), 15, (1, 6, 30, 0, 0)),
    PERSON: ((220, 40, 70), 35, (4, 8, 0, 0, 0)),
    RIDER: ((250, 110, 20), 30, (4, 8, 0, 0, 0)),
    CAR: ((25, 45, 165), 45, (2, 4, 10, 0, 0)),
    TRUCK: ((35, 60, 60), 25, (3, 5, 8, 0, 10)),
    BUS: ((20, 125, 165), 25, (2, 4, 8, 0, 0)),
    TRAIN: ((40, 155, 115), 20, (2, 4, 8, 6, 0)),
    MOTORCYCLE: ((70, 25, 215), 30, (3, 4, 0, 0, 0)),
    BICYCLE: ((145, 25, 55), 25, (3, 4, 0, 0, 0)),
}

FAR = 400.0  # metres; ground and facades drawn up to here reach the horizon


def _street(s, side, walk, road_l, road_r):
    """Sky, ground, lane markings; returns the lateral building line of each side."""
    rng = s.rng
    s.fill(s.new(SKY), [[(0, 0), (s.w, 0), (s.w, s.y0 + 1), (0, s.y0 + 1)]])
    for sign in (-1, 1):
        s.fill(s.new(SIDEWALK), [s.ground(0, sign * 200, 1.0, FAR)])
    s.fill(s.new(ROAD), [s.ground(road_l, road_r, 1.0, FAR)])
    edge = road_r if side > 0 else road_l
    z0 = rng.uniform(8, 14)
    s.fill(s.new(TERRAIN), [s.ground(edge + side * (walk * 0.35), edge + side * walk, z0,
                                     z0 + rng.uniform(25, 60))])
    if rng.random() < 0.6:
        z0 = rng.uniform(10, 25)
        other = road_l if side > 0 else road_r
        s.fill(s.new(PARKING), [s.ground(other, other - side * 2.2, z0, z0 + rng.uniform(8, 20))])
    marks = s.new(ROAD, _WHITE)
    dashes = []
    for lane_x in np.arange(road_l + 3.5, road_r - 1.0, 3.5):
        for z in np.arange(rng.uniform(6, 12), 150, 9.0):
            dashes.append(s.ground(lane_x - 0.08, lane_x + 0.08, z, z + 3.0))
    for x in (road_l + 0.3, road_r - 0.3):
        dashes.append(s.ground(x - 0.06, x + 0.06, 5.0, FAR))
    s.fill(marks, dashes)
    return road_l - walk, road_r + walk


def _facades(s, building_line):
    """Building facades along one side, with windows; the last one ends at the street end."""
    rng = s.rng
    z = 4.0
    while z < 160:
        length = rng.uniform(10, 30)
        height = rng.uniform(9, 26)
        facade = s.new(BUILDING)
        s.fill(facade, [s.plane(building_line, z, z + length, 0, height)])
        glass = s.new(BUILDING, _GLASS)
        windows = []
        if z < 80:
            for wz in np.arange(z + 1.0, z + length - 1.5, 2.8):
                for wy in np.arange(1.5, height - 1.5, 3.2):
                    windows.append(s.plane(building_line, wz, wz + 1.3, wy, wy + 1.6))
        if windows:
            s.fill(glass, windows)
        if rng.random() < 0.25:
            billboard = s.new(UNLABELED)
            bz = z + rng.uniform(0, length / 2)
            s.fill(billboard, [s.plane(building_line * 0.98, bz, bz + 3, 3.0, 5.0)])
        z += length
    end = rng.uniform(170, 260)
    x = -80.0
    while x < 80:
        width = rng.uniform(10, 30)
        s.fill(s.new(BUILDING), [s.front(x, x + width, end, 0, rng.uniform(10, 35))])
        x += width


def _side_planes(s, side, walk, road_l, road_r, building_line):
    """Wall and hedge before the facades, fence behind the terrain strip."""
    rng = s.rng
    wall_x = building_line[1 if side < 0 else 0] * 0.97
    z0 = rng.uniform(9, 20)
    s.fill(s.new(WALL), [s.plane(wall_x, z0, z0 + rng.uniform(10, 25), 0, rng.uniform(1.8, 3.0))])
    hedge_x = building_line[0 if side < 0 else 1] * 0.97
    z0 = rng.uniform(25, 40)
    s.fill(s.new(VEGETATION), [s.plane(hedge_x, z0, z0 + rng.uniform(10, 20), 0, 1.6)])
    edge = road_r if side > 0 else road_l
    fence_x = edge + side * walk * 0.98
    z0 = rng.uniform(7, 12)
    s.fill(s.new(FENCE), [s.plane(fence_x, z0, z0 + rng.uniform(12, 30), 0, 1.3)])


def _tree(s, x, z):
    scale = s.scale(z)
    trunk = s.new(VEGETATION, (90, 70, 45))
    s.fill(trunk, [s.front(x - 0.15, x + 0.15, z, 0, 3.5)])
    crown = s.new(VEGETATION)
    cx, cy = s.point(x, z, 5.0)
    s.ellipse(crown, (cx, cy), (2.0 * scale, 2.4 * scale))


def _pole_with_light(s, x, z):
    s.fill(s.new(POLE), [s.front(x - 0.1, x + 0.1, z, 0, 5.6)])
    box = s.new(TRAFFIC_LIGHT, (40, 40, 35) if s.rng.random() < 0.5 else None)
    s.fill(box, [s.front(x - 0.25, x + 0.25, z, 4.3, 5.6)])
    lit = s.rng.integers(3)
    for k, colour in enumerate(((230, 30, 20), (240, 200, 20), (30, 220, 60))):
        lamp = s.new(TRAFFIC_LIGHT, colour, shade=1.0 if k == lit else 0.35)
        s.disc(lamp, s.point(x, z, 5.35 - 0.4 * k), 0.14 * s.scale(z))


def _pole_with_sign(s, x, z):
    s.fill(s.new(POLE), [s.front(x - 0.07, x + 0.07, z, 0, 3.0)])
    colour = ((230, 225, 20), (30, 60, 200), (220, 30, 30))[s.rng.integers(3)]
    sign = s.new(TRAFFIC_SIGN, colour)
    r = 0.45 * s.scale(z)
    cx, cy = s.point(x, z, 2.8)
    shape = s.rng.integers(3)
    if shape == 0:
        s.disc(sign, (cx, cy), r)
        s.disc(s.new(TRAFFIC_SIGN, _WHITE), (cx, cy), r * 0.55)
    elif shape == 1:
        s.fill(sign, [[(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]])
    else:
        s.fill(sign, [[(cx, cy - r), (cx + r, cy + 0.8 * r), (cx - r, cy + 0.8 * r)]])


def _body(s, label_id, x, z, base, torso, legs=True):
    """Head, torso, arms and (standing) legs of a person or rider; ``base`` is the hip height."""
    sc = s.scale(z)
    clothes = s.new(label_id)
    trousers = s.new(label_id, (50, 50, 80))
    skin = s.new(label_id, _SKIN)
    if legs:
        s.fill(trousers, [s.front(x - 0.2, x - 0.03, z, 0, base),
                          s.front(x + 0.03, x + 0.2, z, 0, base)])
    s.fill(clothes, [s.front(x - 0.24, x + 0.24, z, base, base + torso)])
    s.fill(clothes, [s.front(x - 0.33, x - 0.24, z, base + 0.1, base + torso - 0.05),
                     s.front(x + 0.24, x + 0.33, z, base + 0.1, base + torso - 0.05)])
    s.disc(skin, s.point(x, z, base + torso + 0.15), 0.13 * sc)


def _person(s, x, z):
    _body(s, PERSON, x, z, 0.85, 0.65)


def _two_wheeler(s, x, z, kind, ridden):
    """A bicycle or motorcycle in side view, optionally with a rider."""
    sc = s.scale(z)
    r = (0.34 if kind == BICYCLE else 0.32) * sc
    rear, front = s.point(x - 0.55, z, 0.34), s.point(x + 0.55, z, 0.34)
    if kind == BICYCLE:
        frame = s.new(BICYCLE)
        for centre in (rear, front):
            s.disc(frame, centre, r, thickness=max(0.09 * sc, 1))
        seat, bar = s.point(x - 0.15, z, 0.95), s.point(x + 0.4, z, 1.05)
        hub = s.point(x, z, 0.4)
        s.stroke(frame, [rear, seat, hub, rear], max(0.07 * sc, 1))
        s.stroke(frame, [seat, bar, front], max(0.07 * sc, 1))
    else:
        tyres = s.new(MOTORCYCLE, _TYRE)
        for centre in (rear, front):
            s.disc(tyres, centre, r)
        body = s.new(MOTORCYCLE)
        cx, cy = s.point(x, z, 0.65)
        s.ellipse(body, (cx, cy), (0.6 * sc, 0.25 * sc))
        s.stroke(body, [s.point(x + 0.3, z, 0.7), s.point(x + 0.55, z, 1.1)], max(0.08 * sc, 1))
    if ridden:
        _body(s, RIDER, x - 0.1, z, 0.95, 0.6, legs=False)
        legs = s.new(RIDER, (50, 50, 80))
        s.stroke(legs, [s.point(x - 0.1, z, 1.0), s.point(x + 0.15, z, 0.75),
                        s.point(x + 0.1, z, 0.35)], max(0.14 * sc, 1))


def _vehicle(s, x, z, kind):
    """A vehicle driving along the road: a box seen from behind in perspective."""
    width, height, length = {CAR: (1.8, 1.5, 4.5), TRUCK: (2.5, 3.6, 8.0),
                             BUS: (2.55, 3.2, 12.0), TRAIN: (2.65, 3.7, 28.0)}[kind]
    x0, x1 = x - width / 2, x + width / 2
    corners = [s.point(cx, cz, cy) for cx in (x0, x1) for cz in (z, z + length)
               for cy in (0.25, height)]
    hull = cv2.convexHull(np.array(corners, np.float32)).reshape(-1, 2)
    s.fill(s.new(kind, None, shade=0.75), [hull])
    body = s.new(kind)
    s.fill(body, [s.front(x0, x1, z, 0.25, height)])
    glass = s.new(kind, _GLASS)
    top = height - 0.15
    bottom = height * (0.55 if kind == CAR else 0.6)
    if kind != TRUCK:
        s.fill(glass, [s.front(x0 + 0.15, x1 - 0.15, z, bottom, top)])
    if kind in (BUS, TRAIN):
        near_side = x0 if x > 0 else x1
        s.fill(glass, [s.plane(near_side, z + 1.0, z + length - 1.0, bottom, top)])
    if kind == TRAIN:
        s.stroke(s.new(TRAIN, (60, 60, 60)), [s.point(x - 0.6, z + 3, height),
                                              s.point(x, z + 3, height + 0.6),
                                              s.point(x + 0.6, z + 3, height)],
                 max(0.08 * s.scale(z), 1))
    lights = s.new(kind, (220, 20, 20))
    s.fill(lights, [s.front(x0 + 0.05, x0 + 0.3, z, 0.8, 1.0),
                    s.front(x1 - 0.3, x1 - 0.05, z, 0.8, 1.0)])
    tyres = s.new(kind, _TYRE)
    s.fill(tyres, [s.front(x0 + 0.05, x0 + 0.35, z, 0, 0.35),
                   s.front(x1 - 0.35, x1 - 0.05, z, 0, 0.35)])


def _box(s, x, z, label_id, width, height):
    s.fill(s.new(label_id), [s.front(x - width / 2, x + width / 2, z, 0, height)])


def _roadside(s, side, walk, road_l, road_r):
    """Trees, poles with lights and signs, persons, void boxes, a parked two-wheeler.

    Returns (depth, draw, x) entries; ``draw(s, x, z)`` draws at lateral x and depth z.
    """
    rng = s.rng
    walk_x = {-1: (road_l - walk + 0.8, road_l - 0.5), 1: (road_r + 0.5, road_r + walk - 0.8)}
    kerb = {-1: road_l - 0.4, 1: road_r + 0.4}
    terrain_x = (road_r + walk * 0.7) if side > 0 else (road_l - walk * 0.7)

    def anywhere():
        return 1 if rng.random() < 0.5 else -1

    entries = [(rng.uniform(12, 40), _tree, terrain_x) for _ in range(rng.integers(1, 4))]
    entries += [(rng.uniform(8, 13), _pole_with_light, kerb[-side]),
                (rng.uniform(11, 20), _pole_with_sign, kerb[side])]
    for _ in range(rng.integers(0, 3)):
        pole = _pole_with_light if rng.random() < 0.5 else _pole_with_sign
        entries.append((rng.uniform(20, 45), pole, kerb[anywhere()]))
    for _ in range(rng.integers(1, 4)):
        entries.append((rng.uniform(9, 25), _person, rng.uniform(*walk_x[anywhere()])))
    entries += [
        (rng.uniform(10, 25), partial(_box, label_id=STATIC, width=0.6, height=1.0),
         rng.uniform(*walk_x[-side])),
        (rng.uniform(10, 25), partial(_box, label_id=DYNAMIC, width=1.2, height=0.9),
         rng.uniform(*walk_x[side]))]
    return entries


def _traffic(s, index, road_l, road_r):
    """Vehicles in the lanes and a ridden two-wheeler; (depth, draw, x) entries as _roadside.

    ``index`` picks the large vehicle (truck, bus, train) and which two-wheeler is ridden, so
    that any three consecutive scenes hold all 19 classes.
    """
    rng = s.rng
    ridden, parked = (BICYCLE, MOTORCYCLE) if index % 2 == 0 else (MOTORCYCLE, BICYCLE)
    entries = [(rng.uniform(10, 18), partial(_two_wheeler, kind=ridden, ridden=True), road_r - 1.0),
               (rng.uniform(10, 20), partial(_two_wheeler, kind=parked, ridden=False),
                rng.uniform(road_l - 3.0, road_l - 1.0))]
    lanes = list(np.arange(road_l + 1.75, road_r - 1.5, 3.5))
    vehicles = [(TRUCK, BUS, TRAIN)[index % 3], CAR] + [CAR] * int(rng.integers(0, 2))
    if rng.random() < 0.3:
        vehicles.append((TRUCK, BUS, TRAIN)[rng.integers(3)])
    order = rng.permutation(len(lanes))
    free_from = {}  # lane -> nearest depth still free
    for k, kind in enumerate(vehicles):
        lane = lanes[order[k % len(lanes)]]
        z = free_from.get(lane, rng.uniform(12, 20))
        entries.append((z, partial(_vehicle, kind=kind), lane))
        free_from[lane] = z + rng.uniform(14, 30) + (30 if kind == TRAIN else 0)
    return entries


def compose(s, index):
    """Draw a street scene (see _traffic for ``index``)."""
    rng = s.rng
    side = 1 if rng.random() < 0.5 else -1  # side of the terrain strip and the fence
    walk = rng.uniform(4.0, 6.0)
    road_l, road_r = -rng.uniform(3.0, 5.5), rng.uniform(3.0, 5.5)
    building_line = _street(s, side, walk, road_l, road_r)
    for line in building_line:
        _facades(s, line)
    _side_planes(s, side, walk, road_l, road_r, building_line)
    entries = _roadside(s, side, walk, road_l, road_r) + _traffic(s, index, road_l, road_r)
    for z, draw, x in sorted(entries, key=lambda entry: -entry[0]):  # far to near
        draw(s, x, z)
    ego = s.new(EGO_VEHICLE)
    s.ellipse(ego, (s.w / 2, s.h * 1.02), (s.w * 0.75, s.h * 0.07))


def _condition_look(image, s, condition):
    """Image-only effects of an ACDC condition on an RGB float image (labels unchanged)."""
    rng, h, w = s.rng, s.h, s.w
    rows = np.arange(h, dtype=np.float32)[:, None]
    if condition == "fog":
        t = np.clip((rows - s.y0) / (h - s.y0), 1e-3, 1)
        amount = np.where(rows < s.y0, 0.8, np.minimum(1 - np.exp(-0.35 / t), 0.8))
        amount *= rng.uniform(0.75, 0.95)
        image = image * (1 - amount[..., None]) + 205 * amount[..., None]
    elif condition == "night":
        image = image * rng.uniform(0.25, 0.4) + np.float32((0, 5, 20))
        glow = np.zeros((h, w), np.float32)
        for _ in range(8):
            centre = (int(rng.integers(w)), int(rng.uniform(0.2, 0.6) * h))
            cv2.circle(glow, centre, max(h // 30, 1), 200, -1)
        glow = cv2.GaussianBlur(glow, (0, 0), max(h / 40, 1))
        image = image + glow[..., None] * np.float32((1.0, 0.9, 0.6))
    elif condition == "rain":
        image = image * 0.8 + np.float32((0, 5, 15))
        streaks = np.zeros((h, w), np.float32)
        n = h * w // 400
        starts = np.stack([rng.integers(0, w, n), rng.integers(0, h, n)], 1)
        ends = starts + np.int64([max(w // 200, 1), max(h // 25, 2)])
        lines = [np.stack([a, b]).astype(np.int32) for a, b in zip(starts, ends, strict=True)]
        cv2.polylines(streaks, lines, False, 60, 1)
        image = image + streaks[..., None]
    elif condition == "snow":
        ground = np.isin(s.labels(), (ROAD, SIDEWALK, TERRAIN))
        image = np.where(ground[..., None], image * 0.5 + 120, image * 0.9 + 20)
        flakes = (rng.random((h, w)) < 0.003).astype(np.uint8) * 255
        flakes = cv2.dilate(flakes, np.ones((2, 2), np.uint8)).astype(np.float32)
        image = np.maximum(image, flakes[..., None])
    return image



def render(rng, height, width, index, condition=None):
    """(RGB uint8 (H, W, 3), label ids uint8 (H, W)) of one street scene, with the look of the
    ACDC ``condition`` (None: none)."""
    s = Scene(rng, height, width, _STYLE)
    compose(s, index)
    look = None if condition is None else partial(_condition_look, s=s, condition=condition)
    return finish(s, look), s.labels()
