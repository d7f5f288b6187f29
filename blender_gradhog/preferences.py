"""Add-on preferences: is PyTorch importable, an **Install PyTorch (CPU)** button, an offline folder.

Registered by the add-on's ``register()`` through :data:`classes`. ``bl_idname`` is the add-on's
package name, which is ``blender_gradhog`` for a legacy add-on and ``bl_ext.<repo>.gradhog`` for a
4.2+ extension: this module sits at the package root, so ``__package__`` is exactly that name.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import bpy
from bpy.props import StringProperty

from . import deps

PACKAGE = __package__

# The running install and the last status check, shown by the preferences' draw().
_install_job: deps.PipInstall | None = None
_status: deps.TorchStatus | None = None
_last_message: str = ""


def addon_preferences(context=None):
    """This add-on's preferences (the :class:`GRADHOG_AddonPreferences` instance) or None."""
    context = context or bpy.context
    addon = context.preferences.addons.get(PACKAGE)
    return getattr(addon, "preferences", None)


def _redraw_preferences() -> None:
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == 'PREFERENCES':
                area.tag_redraw()


def _torch_folder_changed(self, context) -> None:
    global _status
    deps.ensure_torch_path(PACKAGE)
    _status = None


def _cheap_status_line() -> tuple[bool, str]:
    """Whether torch can be found, without importing it (draw() runs on every redraw)."""
    if _status is not None:
        return _status.importable, _status.summary()
    spec = importlib.util.find_spec("torch")
    if spec is None:
        return False, "PyTorch not installed (Install below, or set a PyTorch folder)"
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return True, f"PyTorch {version} found (Check shows the devices)"


class GRADHOG_OT_check_torch(bpy.types.Operator):
    """Import PyTorch and show its version and whether CUDA is available"""

    bl_idname = "gradhog.check_torch"
    bl_label = "Check PyTorch"
    bl_options = {'INTERNAL'}

    def execute(self, context):
        global _status
        deps.ensure_torch_path(PACKAGE)
        _status = deps.torch_status()
        if _status.importable:
            self.report({'INFO'}, _status.summary())
            return {'FINISHED'}
        self.report({'ERROR'}, _status.summary())
        return {'CANCELLED'}


class GRADHOG_OT_install_torch(bpy.types.Operator):
    """Download and install PyTorch (CPU build) and numpy for this add-on with Blender's Python"""

    bl_idname = "gradhog.install_torch"
    bl_label = "Install PyTorch (CPU)"
    bl_options = {'INTERNAL'}

    target: StringProperty(
        name="Target Folder",
        description="Where to install (empty: the add-on's own dependency folder)",
        subtype='DIR_PATH',
        options={'SKIP_SAVE'},
    )
    packages: StringProperty(
        name="Packages",
        description="Space-separated requirements to install instead of the default torch/numpy/pillow",
        options={'SKIP_SAVE', 'HIDDEN'},
    )

    _timer = None

    @classmethod
    def poll(cls, context):
        return _install_job is None or _install_job.returncode is not None

    def _start(self, context) -> deps.PipInstall | None:
        global _install_job, _last_message, _status
        prefs = addon_preferences(context)
        wheels_folder = bpy.path.abspath(prefs.wheels_folder) if prefs is not None and prefs.wheels_folder else ""
        if not wheels_folder and not getattr(bpy.app, "online_access", True):
            self.report({'ERROR'}, "Online access is off (Preferences > System > Network): allow it, "
                                   "or install from local wheels, or set a PyTorch folder")
            return None
        ok, message = deps.ensure_pip()
        if not ok:
            self.report({'ERROR'}, message)
            return None
        target = Path(bpy.path.abspath(self.target)) if self.target else deps.default_deps_dir(PACKAGE)
        packages = self.packages.split() or deps.requirements()
        command = deps.pip_install_command(target, wheels_folder=wheels_folder or None, packages=packages)
        print("GradHOG: running", " ".join(command))
        try:
            _install_job = deps.PipInstall(command, target).start()
        except OSError as error:
            self.report({'ERROR'}, f"Could not start pip: {error}")
            return None
        _status = None
        _last_message = f"Installing {' '.join(packages)} into {target}"
        return _install_job

    def _finish(self, context, job: deps.PipInstall):
        global _status, _last_message
        if job.returncode != 0:
            _last_message = f"Install failed: {job.failure_reason()}"
            print("GradHOG: pip output:\n" + "\n".join(job.log[-30:]))
            self.report({'ERROR'}, _last_message)
            return {'CANCELLED'}
        deps.add_to_sys_path(job.target)
        _status = deps.torch_status()
        if not _status.importable:
            _last_message = f"Installed into {job.target}, but: {_status.summary()}"
            self.report({'ERROR'}, _last_message)
            return {'CANCELLED'}
        _last_message = f"Installed into {job.target}: {_status.summary()}"
        self.report({'INFO'}, _last_message)
        return {'FINISHED'}

    def execute(self, context):
        # Scripts and background mode (no event loop): run pip to the end right here.
        job = self._start(context)
        if job is None:
            return {'CANCELLED'}
        job.wait()
        return self._finish(context, job)

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        job = self._start(context)
        if job is None:
            return {'CANCELLED'}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def _cleanup(self, context):
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        _redraw_preferences()

    def modal(self, context, event):
        global _last_message, _install_job
        job = _install_job
        if event.type == 'ESC':
            job.cancel()
            job.poll()
            self._cleanup(context)
            _install_job = None
            _last_message = "Install cancelled"
            self.report({'WARNING'}, _last_message)
            return {'CANCELLED'}
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        done = job.poll()
        context.window_manager.progress_update(int(100 * job.progress))
        _redraw_preferences()
        if not done:
            return {'RUNNING_MODAL'}
        self._cleanup(context)
        return self._finish(context, job)


class GRADHOG_AddonPreferences(bpy.types.AddonPreferences):
    """GradHOG preferences: the PyTorch it runs on."""

    bl_idname = PACKAGE

    torch_folder: StringProperty(
        name="PyTorch Folder",
        description="A folder that already holds torch, numpy and pillow (e.g. made with "
                    "`python3.11 -m pip install --target FOLDER torch numpy pillow`); "
                    "use this on offline machines. Empty: the add-on's own folder",
        subtype='DIR_PATH',
        update=_torch_folder_changed,
    )
    wheels_folder: StringProperty(
        name="Local Wheels",
        description="Install from the .whl files in this folder instead of downloading (pip --no-index)",
        subtype='DIR_PATH',
    )

    def draw(self, context):
        layout = self.layout
        ok, line = _cheap_status_line()
        split = layout.row().split(factor=0.78)
        split.label(text=line, icon='CHECKMARK' if ok else 'ERROR')
        split.operator(GRADHOG_OT_check_torch.bl_idname, text="Check", icon='FILE_REFRESH')

        job = _install_job
        running = job is not None and job.returncode is None
        col = layout.column()
        row = col.row()
        row.enabled = not running
        row.operator(GRADHOG_OT_install_torch.bl_idname, icon='IMPORT')
        if running:
            col.label(text=f"Installing... {100 * job.progress:.0f}% (Esc to cancel)", icon='TIME')
            col.label(text=job.last_line[-120:])
        elif _last_message:
            col.label(text=_last_message[-160:], icon='INFO')
        if not self.wheels_folder and getattr(bpy.app, "online_access", True) is False:
            col.label(text="Online access is off (Preferences > System > Network)", icon='INTERNET_OFFLINE')
        try:
            col.label(text=f"Install folder: {deps.default_deps_dir(PACKAGE)}")
        except Exception as error:  # A path problem must not break the whole preferences page.
            col.label(text=f"Install folder unavailable: {error}", icon='ERROR')

        layout.prop(self, "torch_folder")
        layout.prop(self, "wheels_folder")


classes = (GRADHOG_OT_check_torch, GRADHOG_OT_install_torch, GRADHOG_AddonPreferences)
