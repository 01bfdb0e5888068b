"""The drawing canvas of the synthetic scenes: an instance map drawn with OpenCV, turned into a
label map and a textured RGB image.

Every renderer draws instances of raw label values (the values its dataset stores in label
files) with a style table ``{raw value: (base colour RGB, colour jitter, texture amplitudes)}``,
the texture amplitudes being (fine noise, coarse noise, vertical ramp, horizontal stripes,
vertical stripes).  Instance 0 is the background, drawn with raw value 0.
"""
import cv2
import numpy as np

__all__ = ["Scene", "finish", "rect", "CAMERA_HEIGHT", "NEAREST_GROUND", "GLASS", "TYRE", "SKIN",
           "WHITE"]

GLASS = (45, 55, 70)
TYRE = (25, 25, 25)
SKIN = (225, 180, 150)
WHITE = (235, 235, 235)

CAMERA_HEIGHT = 1.6  # metres
NEAREST_GROUND = 6.0  # metres from the camera to the ground seen at the bottom row


class Scene:
    """An instance map drawn with OpenCV, turned into a label-id map and an RGB image.

    World coordinates are metres: X lateral (right positive), Y height above the ground, Z depth.
    A point is drawn at ``x = vx + t * unit * X``, ``y = y0 + t * (h - y0) - t * unit * Y`` with
    ``t = NEAREST_GROUND / Z``: a pinhole camera looking along the road at the horizon ``y0``.
    """

    def __init__(self, rng, height, width, styles):
        self.rng, self.h, self.w, self.styles = rng, height, width, styles
        self.inst = np.zeros((height, width), np.uint16)
        self.label_ids, self.colours, self.textures = [], [], []
        self.y0 = height * rng.uniform(0.36, 0.46)
        self.vx = width * rng.uniform(0.42, 0.58)
        self.unit = (height - self.y0) / CAMERA_HEIGHT  # pixels per metre at t = 1
        self.new(0)  # the background: unlabeled (Cityscapes), other (ADE20K)

    def new(self, label_id, colour=None, shade=1.0, style=None):
        """A new instance of ``label_id``, its colour jittered around ``colour`` or the class;
        ``style`` replaces the style of ``label_id`` (base colour, jitter, textures)."""
        base, jitter, texture = self.styles[label_id] if style is None else style
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



def rect(x0, y0, x1, y1):
    """Polygon of the axis-aligned rectangle x0..x1, y0..y1 (pixels)."""
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def finish(s, look=None):
    """RGB uint8 (H, W, 3) of a drawn scene: textures, exposure, ``look(image)`` (an effect on
    the RGB float image, e.g. a weather condition), blur."""
    rng = s.rng
    image = s.image()
    image = image * np.float32(rng.uniform(0.85, 1.15)) + rng.uniform(-8, 8, 3).astype(np.float32)
    if look is not None:
        image = look(image)
    image = cv2.GaussianBlur(image, (3, 3), 0.6)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)
