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
OBJ_FIELDS = 56
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
CAM_SIZE = 24

SKY, GROUND_HIT = -1, -2  # what a ray that meets no object hits

NOISE_KINDS = {name: i for i, name in enumerate(NOISE_FUNCTIONS)}  # the kernels' noise numbering
PERLIN, SPARSE_CONVOLUTION = NOISE_KINDS["perlin"], NOISE_KINDS["sc"]
