"""gradhog's pure-torch core: differentiable HOG, Blender's camera, a soft rasterizer, pose estimation.

Nothing in this package imports Blender (``bpy``/``mathutils``); the add-on in ``blender_gradhog``
depends on it, never the other way round. Every function is device-agnostic (CPU by default, CUDA
when the inputs live there) and batch-first: images are ``(B, C, H, W)``.
"""

__version__ = "0.1.0"
