import os, sys  # noqa: E401, I001  (repository root on sys.path for tools/x.py and -m tools.x)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
__doc__ = """Write a small synthetic dataset in the Cityscapes, ACDC or ADE20K layout, and its lists.

    python tools/make_synthetic_dataset.py --root /tmp/synth --dataset cityscapes \\
        --train 40 --val 10 --test 10 --size 256 512 --seed 0

Scenes are streets seen from a car, drawn in perspective from planar pieces: sky, road with lane
markings, sidewalks, terrain, building facades with windows, walls, fences, hedges and trees,
poles with traffic lights and signs, persons, riders on bicycles and motorcycles, cars, trucks,
buses, trams, and void regions (ego vehicle 1, static 4, dynamic 5, parking 9, unlabeled 0).  Every
image holds most of the 19 classes; truck, bus and train take turns, so any three consecutive
images are drawn with all 19 (a small object can still be hidden behind a nearer one).  Regions
are textured (noise, gradients, stripes) and every instance has its own colour jitter, so colour
alone does not give the class.  ACDC images are spread over fog, night, rain and snow, with
the look of each condition; ACDC test images have no labels, Cityscapes test images neither.

Labels are Cityscapes label ids (not trainIds) in 8-bit grayscale PNGs; images are 8-bit RGB
PNGs (OpenCV reads them back as BGR).

    python tools/make_synthetic_dataset.py --root /tmp/synth --dataset ade20k \\
        --train 40 --val 10 --size 128 160 --seed 0

ADE20K scenes alternate between rooms (ceiling, wall, floor, window, curtains, door, painting,
bed, table, cabinet, lamp, person) and streets (sky, mountain, building, window, grass, road,
sidewalk, tree, car, person), 20 of the 150 classes, with blobs of "other"; written in the
official layout (``images/{training,validation}/ADE_{train,val}_%08d.jpg`` as JPEGs of quality
90, ``annotations/.../*.png`` with raw values: 0 = other, class k as k + 1), train and val only.

The same seed gives byte-identical files.
"""
import argparse
import time
from functools import partial

import cv2
import numpy as np

from lib.datasets.acdc import CONDITIONS
from tools.make_lists import make_lists

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
_GLASS = (45, 55, 70)
_TYRE = (25, 25, 25)
_SKIN = (225, 180, 150)
_WHITE = (235, 235, 235)

CAMERA_HEIGHT = 1.6  # metres
NEAREST_GROUND = 6.0  # metres from the camera to the ground seen at the bottom row
FAR = 400.0  # metres; ground and facades drawn up to here reach the horizon


class Scene:
    """An instance map drawn with OpenCV, turned into a label-id map and an RGB image.

    World coordinates are metres: X lateral (right positive), Y height above the ground, Z depth.
    A point is drawn at ``x = vx + t * unit * X``, ``y = y0 + t * (h - y0) - t * unit * Y`` with
    ``t = NEAREST_GROUND / Z``: a pinhole camera looking along the road at the horizon ``y0``.
    """

    def __init__(self, rng, height, width, styles=_STYLE):
        self.rng, self.h, self.w, self.styles = rng, height, width, styles
        self.inst = np.zeros((height, width), np.uint16)
        self.label_ids, self.colours, self.textures = [], [], []
        self.y0 = height * rng.uniform(0.36, 0.46)
        self.vx = width * rng.uniform(0.42, 0.58)
        self.unit = (height - self.y0) / CAMERA_HEIGHT  # pixels per metre at t = 1
        self.new(0)  # the background: unlabeled (Cityscapes), other (ADE20K)

    def new(self, label_id, colour=None, shade=1.0):
        """A new instance of ``label_id``, its colour jittered around ``colour`` or the class."""
        base, jitter, texture = self.styles[label_id]
        colour = np.array(base if colour is None else colour, np.float32)
        colour = colour * self.rng.uniform(0.85, 1.15) * shade
        colour += self.rng.uniform(-jitter, jitter, 3)
        self.label_ids.append(label_id)
        self.colours.append(np.clip(colour, 0, 255))
        self.textures.append(texture)
        return len(self.label_ids) - 1

    # Drawing: coordinates in pixels (floats), 4 fractional bits for thin objects.
    def fill(self, idx, polygons):
        pts = [np.round(np.asarray(p, np.float64) * 16).astype(np.int32) for p in polygons]
        cv2.fillPoly(self.inst, pts, (idx,), lineType=cv2.LINE_8, shift=4)

    def disc(self, idx, centre, radius, thickness=-1):
        c = tuple(int(round(v * 16)) for v in centre)
        cv2.circle(self.inst, c, max(int(round(radius * 16)), 16), (idx,),
                   thickness if thickness < 0 else max(int(round(thickness)), 1), cv2.LINE_8, 4)

    def ellipse(self, idx, centre, axes):
        c = tuple(int(round(v * 16)) for v in centre)
        a = tuple(max(int(round(v * 16)), 16) for v in axes)
        cv2.ellipse(self.inst, c, a, 0, 0, 360, (idx,), -1, cv2.LINE_8, 4)

    def stroke(self, idx, points, thickness):
        pts = np.round(np.asarray(points, np.float64) * 16).astype(np.int32)
        cv2.polylines(self.inst, [pts], False, (idx,), max(int(round(thickness)), 1),
                      cv2.LINE_8, 4)

    # Geometry.
    def t(self, z):
        return NEAREST_GROUND / z

    def point(self, x, z, y=0.0):
        t = self.t(z)
        return (self.vx + t * self.unit * x, self.y0 + t * (self.h - self.y0 - self.unit * y))

    def ground(self, x0, x1, z0, z1):
        """Polygon of the ground rectangle x0..x1, z0..z1."""
        return [self.point(x0, z0), self.point(x1, z0), self.point(x1, z1), self.point(x0, z1)]

    def plane(self, x, z0, z1, y0, y1):
        """Polygon of the vertical plane at lateral x, depth z0..z1, height y0..y1."""
        return [self.point(x, z0, y0), self.point(x, z1, y0), self.point(x, z1, y1),
                self.point(x, z0, y1)]

    def front(self, x0, x1, z, y0, y1):
        """Polygon of the rectangle facing the camera at depth z."""
        return [self.point(x0, z, y0), self.point(x1, z, y0), self.point(x1, z, y1),
                self.point(x0, z, y1)]

    def scale(self, z):
        """Pixels per metre at depth z."""
        return self.t(z) * self.unit

    # Rendering.
    def labels(self):
        return np.array(self.label_ids, np.uint8)[self.inst]

    def image(self):
        """RGB float32 (H, W, 3): instance colour plus its textures."""
        h, w, rng = self.h, self.w, self.rng
        fine = rng.standard_normal((h, w), dtype=np.float32)
        small = rng.standard_normal((max(h // 12, 2), max(w // 12, 2)), dtype=np.float32)
        coarse = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        ramp = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
        period = max(h / 40, 3.0)
        h_stripes = np.sign(np.sin(np.arange(h, dtype=np.float32) * (2 * np.pi / period)))[:, None]
        v_stripes = np.sign(np.sin(np.arange(w, dtype=np.float32) * (2 * np.pi / period)))[None]
        amp = np.array(self.textures, np.float32)[self.inst]  # (H, W, 5)
        texture = (amp[..., 0] * fine + amp[..., 1] * coarse + amp[..., 2] * ramp
                   + amp[..., 3] * h_stripes + amp[..., 4] * v_stripes)
        return np.array(self.colours, np.float32)[self.inst] + texture[..., None]


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


def _finish(s, condition):
    """RGB uint8 (H, W, 3) of a drawn scene: textures, exposure, the condition's look, blur."""
    rng = s.rng
    image = s.image()
    image = image * np.float32(rng.uniform(0.85, 1.15)) + rng.uniform(-8, 8, 3).astype(np.float32)
    if condition is not None:
        image = _condition_look(image, s, condition)
    image = cv2.GaussianBlur(image, (3, 3), 0.6)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def render(rng, height, width, index, condition=None):
    """(RGB uint8 (H, W, 3), label ids uint8 (H, W)) of one street scene."""
    s = Scene(rng, height, width)
    compose(s, index)
    return _finish(s, condition), s.labels()


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


def _rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


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
    return _finish(s, None), s.labels()


_CITIES = {"train": ("synthcity", "synthtown"), "val": ("synthvale",), "test": ("synthburg",)}
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


def _cityscapes_paths(split, index):
    cities = _CITIES[split]
    city = cities[index % len(cities)]
    stem = f"{city}_{index // len(cities):06d}_000019"
    return (f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png",
            f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png", None)


def _acdc_paths(split, index):
    c = index % len(CONDITIONS)
    condition = CONDITIONS[c]
    sequence = f"GOPR{100 * (c + 1) + 10 * _SPLIT_CODE[split] + index // 20:04d}"
    stem = f"{sequence}_frame_{index:06d}"
    return (f"rgb_anon/{condition}/{split}/{sequence}/{stem}_rgb_anon.png",
            f"gt/{condition}/{split}/{sequence}/{stem}_gt_labelIds.png", condition)


def _write_file(path, array, params=()):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, array, list(params)):
        raise OSError(f"cannot write {path}")


_ADE20K_FOLDERS = {"train": ("training", "train"), "val": ("validation", "val")}


def _ade20k_paths(split, index):
    folder, prefix = _ADE20K_FOLDERS[split]
    stem = f"ADE_{prefix}_{index + 1:08d}"  # the official numbering starts at 1
    return f"images/{folder}/{stem}.jpg", f"annotations/{folder}/{stem}.png", None


_PATHS = {"cityscapes": _cityscapes_paths, "acdc": _acdc_paths, "ade20k": _ade20k_paths}


def _write_image(path, rgb):
    """An RGB image as the dataset stores it: PNG, or JPEG (quality 90) for a .jpg path."""
    params = (cv2.IMWRITE_JPEG_QUALITY, 90) if path.endswith(".jpg") else ()
    _write_file(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)


def make_synthetic_dataset(root, dataset, counts, size, seed):
    """Write ``counts`` ({split: n}) scenes of ``size`` (H, W) under ``<root>/<dataset>/`` and the
    lists under ``<root>/list/<dataset>/``; returns the counts of the lists written.

    ADE20K has train and val splits only (its test images are a separate release)."""
    if dataset == "ade20k" and set(counts) - set(_ADE20K_FOLDERS):
        raise ValueError(f"ade20k has the splits {list(_ADE20K_FOLDERS)}, got {list(counts)}")
    paths = _PATHS[dataset]
    height, width = size
    for split, n in counts.items():
        for index in range(n):
            image_rel, label_rel, condition = paths(split, index)
            rng = np.random.default_rng([seed, _SPLIT_CODE[split], index])
            if dataset == "ade20k":
                rgb, label = render_ade20k(rng, height, width, index)
            else:
                rgb, label = render(rng, height, width, index, condition)
            base = os.path.join(root, dataset)
            _write_image(os.path.join(base, image_rel), rgb)
            if split != "test":
                # Unfiltered rows: label maps are runs of equal values, and decode faster so.
                _write_file(os.path.join(base, label_rel), label,
                           (cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE))
    return make_lists(root, dataset)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="output folder (use it as DATASET.ROOT)")
    parser.add_argument("--dataset", required=True, choices=list(_PATHS))
    parser.add_argument("--train", type=int, default=40, help="training images")
    parser.add_argument("--val", type=int, default=10, help="validation images")
    parser.add_argument("--test", type=int, default=None,
                        help="test images, no labels (default 10; ade20k has no test split)")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.test is None:
        args.test = 0 if args.dataset == "ade20k" else 10
    start = time.perf_counter()
    counts = {"train": args.train, "val": args.val, "test": args.test}
    make_synthetic_dataset(args.root, args.dataset, {k: v for k, v in counts.items() if v > 0},
                           tuple(args.size), args.seed)
    print(f"wrote {sum(counts.values())} {args.size[0]}x{args.size[1]} images in "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
