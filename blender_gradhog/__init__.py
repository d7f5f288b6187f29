"""GradHOG: align a camera to a reference photo of a known mesh with differentiable HOG.

This file must import without Blender: the ``gradhog`` console script lives in this package too.
Everything that needs ``bpy`` is imported inside :func:`register`.
"""

bl_info = {
    "name": "GradHOG Camera Alignment",
    "author": "gradhog developers",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "View3D > Sidebar > GradHOG",
    "description": "Align a camera to a photo of a known mesh with differentiable HOG",
    "category": "Camera",
}


def register():
    """Register the add-on's classes and scene properties (called by Blender)."""


def unregister():
    """Remove everything :func:`register` added (called by Blender)."""
