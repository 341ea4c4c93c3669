"""sora3r: 4D geometry from monocular video with a video diffusion model (Sora3R, Mai et al. 2025).

Conventions (see README): OpenCV cameras (x right, y down, z forward), camera-to-world 4x4 poses,
intrinsics in pixels of the array they describe, world = camera of the first frame of a clip.
"""

__version__ = "0.1.0"
