"""Human3.6M joint sets, cameras and splits, and their place in the 44-keypoint layout.

Two joint sets matter:

- the 32 motion-capture joints of the original files (``D3_Positions*`` / ``D2_Positions``
  CDF files and VideoPose3D's ``data_3d_h36m.npz``), numbered 0..31;
- the 17-joint subset used for 2D-to-3D lifting, in the order of VideoPose3D, mmpose and most
  lifting work ("H36M-17"): the 32 joints ``H36M17_FROM_32``.

``H36M17_TO_44`` places H36M-17 into ProHMR's 44 layout (extra part). It agrees with ProHMR's
32-joint map (``pose_geometry.H36M32_TO_44``): H36M joints 0 and 11 (pelvis) coincide, and so
do 13 (thorax) and 24 (the right collar's start), which ProHMR uses for "Neck (LSP)". This was
checked on the real sample files (mmpose's 17-joint ``test_h36m_body3d.npz`` and SPIN's
24-joint ``test_h36m.npz`` of the same frames agree to the last digit).

Sides are the subject's own.
"""

from __future__ import annotations

__all__ = [
    "H36M17_FROM_32",
    "H36M17_NAMES",
    "H36M17_PARENTS",
    "H36M17_TO_44",
    "H36M32_NAMES",
    "H36M_CAMERA_IDS",
    "H36M_PROTOCOL2_CAMERA",
    "H36M_TEST_SUBJECTS",
    "H36M_TRAIN_SUBJECTS",
]

#: Names of the 32 Human3.6M motion-capture joints (index = joint number in the original files).
#: "site" joints are end points (toes, head top, finger and thumb tips).
H36M32_NAMES: tuple[str, ...] = (
    "pelvis",  # 0 (coincides with 11)
    "right_hip",  # 1
    "right_knee",  # 2
    "right_ankle",  # 3
    "right_toe_base",  # 4
    "right_toe_site",  # 5
    "left_hip",  # 6
    "left_knee",  # 7
    "left_ankle",  # 8
    "left_toe_base",  # 9
    "left_toe_site",  # 10
    "spine",  # 11 (at the pelvis)
    "spine1",  # 12 ("Spine (H36M)")
    "thorax",  # 13 (neck base; coincides with 16 and 24)
    "neck_nose",  # 14 ("Jaw (H36M)")
    "head",  # 15 ("Head (H36M)")
    "left_collar",  # 16
    "left_shoulder",  # 17
    "left_elbow",  # 18
    "left_wrist",  # 19
    "left_thumb",  # 20
    "left_thumb_site",  # 21
    "left_hand",  # 22
    "left_hand_site",  # 23
    "right_collar",  # 24
    "right_shoulder",  # 25
    "right_elbow",  # 26
    "right_wrist",  # 27
    "right_thumb",  # 28
    "right_thumb_site",  # 29
    "right_hand",  # 30
    "right_hand_site",  # 31
)

#: Names of the 17 lifting joints in H36M-17 order (VideoPose3D / mmpose).
H36M17_NAMES: tuple[str, ...] = (
    "pelvis",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "spine",
    "thorax",
    "neck_nose",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)

#: H36M-17 joint i is 32-joint H36M17_FROM_32[i].
H36M17_FROM_32: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

#: Parent of every H36M-17 joint (-1 for the pelvis), for drawing and bone lengths.
H36M17_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

#: H36M-17 joint i goes to 44-layout index H36M17_TO_44[i] (25 + extra index).
H36M17_TO_44: tuple[int, ...] = (
    25 + 14,  # pelvis -> Pelvis (MPII)
    25 + 2,  # right hip
    25 + 1,  # right knee
    25 + 0,  # right ankle
    25 + 3,  # left hip
    25 + 4,  # left knee
    25 + 5,  # left ankle
    25 + 16,  # spine -> Spine (H36M)
    25 + 12,  # thorax -> Neck (LSP)
    25 + 17,  # neck/nose -> Jaw (H36M)
    25 + 18,  # head -> Head (H36M)
    25 + 9,  # left shoulder
    25 + 10,  # left elbow
    25 + 11,  # left wrist
    25 + 8,  # right shoulder
    25 + 7,  # right elbow
    25 + 6,  # right wrist
)

#: The four Human3.6M cameras, in the order of the dataset (and of VideoPose3D's 2D files).
H36M_CAMERA_IDS: tuple[str, ...] = ("54138969", "55011271", "58860488", "60457274")

#: Protocol 2 evaluates on the frontal camera only (docs/evaluation.md#human36m-protocol-2).
H36M_PROTOCOL2_CAMERA: str = "60457274"

#: Training and evaluation subjects (S2, S3, S4 have no public 3D ground truth; S10 is withheld).
H36M_TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
H36M_TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
