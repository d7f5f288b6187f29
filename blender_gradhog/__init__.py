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

# Registered classes, in order (PropertyGroups before the properties that point at them).
_registered: list = []


def _modules():
    from . import operators, panel, preferences, properties

    return [preferences, properties, operators, panel]


def register():
    """Register the add-on's classes and scene properties (called by Blender)."""
    import bpy

    if _registered:  # registered twice without unregister in between: start clean
        unregister()
    try:
        from . import deps

        deps.ensure_torch_path(__package__)  # a PyTorch installed from the preferences
    except Exception as error:  # never block registration: the panel says how to install torch
        print(f"GradHOG: could not add the PyTorch folder to sys.path ({error})")
    for module in _modules():
        for cls in module.classes:
            bpy.utils.register_class(cls)
            _registered.append(cls)
        if hasattr(module, "register"):
            module.register()


def unregister():
    """Remove everything :func:`register` added (called by Blender)."""
    import bpy

    from . import properties

    if hasattr(bpy.types.Scene, "gradhog"):
        properties.unregister()
    for cls in reversed(_registered):
        bpy.utils.unregister_class(cls)
    _registered.clear()
