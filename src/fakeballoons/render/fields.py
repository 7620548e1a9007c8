"""The data layout the rendering kernels read: columns of an object row and of the camera array.

Built by :mod:`fakeballoons.render.pack`, read by :mod:`.kernels` and :mod:`.general`.
"""

from __future__ import annotations

from ..config import NOISE_FUNCTIONS

# Object row fields.
CX, CY, CZ = 0, 1, 2  # centre
IAX, IAY, IAZ = 3, 4, 5  # 1 / semi-axes
OX, OY, OZ = 6, 7, 8  # (eye - centre) / semi-axes: the ray origin in unit-sphere space
OC = 9  # |o'|^2 - 1
COL_R, COL_G, COL_B = 10, 11, 12  # radiance Le in [0, 1]
KD, KS, NS = 13, 14, 15  # Phong coefficients and exponent
NOISE_SCALE = 16
CLASS = 17  # label 1..K
INSTANCE = 18  # object index in its scene + 1
BBX0, BBY0, BBX1, BBY1 = 19, 20, 21, 22  # projected bounding box, continuous pixel coordinates
# Read by the general kernel only (zero in a batch of the report's objects):
SHAPE = 23  # shape family, an index of SHAPES
P0, P1, P2 = 24, 25, 26  # shape parameters (render/shapes.py)
ROT = 27  # 9 entries: the rotation matrix R (object -> world), row-major
ROTATED = 36  # 1 if R is not the identity
TEXTURE = 37  # texture space, an index of TEXTURES
NOISE_KIND = 38  # noise function of the texture
SCALE = 39  # s: solid texture is taken at r * p_object / s
RADIUS = 40  # bounding-sphere radius, for shadow rays
EQ = 41  # 9 entries: diag(1 / axes) R^T of a rotated ellipsoid, which maps it to the unit sphere
NEAR = 50  # |c - eye| - RADIUS: no point of the object is nearer the eye (tiles list objects by it)
CE = 51  # 3 entries: c - eye, world space (the camera rays' bounding-sphere test)
W2 = 54  # |c - eye|^2
R2 = 55  # RADIUS^2
# The pixel test of the report's CPU kernel (pack.refine_tiles fills them; elsewhere they are zero
# and the camera's footprint NaN, which settles nothing). Over normalised screen coordinates (x, y),
# as ray_dir computes them, the ray discriminant half_b^2 - a OC is the quadratic
# Q0 x^2 + 2 Q1 x y + Q2 y^2 + 2 Q3 x + 2 Q4 y + Q5 and half_b the linear HB0 + HB1 x + HB2 y;
# MARGIN_D and MARGIN_HB, times a bound on |d| (squared for MARGIN_D), are the margins they must
# clear to settle a pixel (MARGIN_HB is inf where the eye is not clearly outside the ellipsoid, and
# MARGIN_D NaN where a value is not finite). T_MARGIN is the relative margin between two objects'
# ray parameters for one to hide the other in a whole pixel (NaN, no verdict, unless the eye is
# well outside the ellipsoid, where the kernel's t is accurate to far better than that).
Q0, Q1, Q2, Q3, Q4, Q5 = 56, 57, 58, 59, 60, 61
HB0, HB1, HB2 = 62, 63, 64
MARGIN_D, MARGIN_HB, T_MARGIN = 65, 66, 67
OBJ_FIELDS = 68
# OX, OY, OZ (and OC) of other objects: a rotated ellipsoid's eye in unit-sphere space, EQ (eye - c)
# (and its |.|^2 - 1); any other shape's eye in object space, R^T (eye - c).

# Camera fields.
EYE, RIGHT, UP, FWD = 0, 3, 6, 9  # eye position and unit basis vectors (3 each)
SX, SY = 12, 13  # tan(fov_y / 2) * aspect, tan(fov_y / 2)
LIGHT = 14  # light position (3)
KA = 17
GROUND = 18  # 1 if there is a ground plane (general kernel)
GROUND_Y, GROUND_SCALE, GROUND_ALBEDO, GROUND_KD = 19, 20, 21, 22
SHADOWS = 23  # 1 for shadow rays (general kernel)
FOOT_PX, FOOT_PY = 24, 25  # the largest |sample offset| from a pixel centre, in pixels (x, y)
FOOT_X, FOOT_Y = 26, 27  # the same in normalised screen coordinates (all four NaN until pack.refine_tiles)
CAM_SIZE = 28

SKY, GROUND_HIT = -1, -2  # what a ray that meets no object hits

NOISE_KINDS = {name: i for i, name in enumerate(NOISE_FUNCTIONS)}  # the kernels' noise numbering
PERLIN, SPARSE_CONVOLUTION = NOISE_KINDS["perlin"], NOISE_KINDS["sc"]
