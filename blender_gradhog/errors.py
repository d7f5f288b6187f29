"""Errors the add-on reports to the user (bpy-free, so the backend loader and the CLIs share them)."""


class AlignError(RuntimeError):
    """The alignment cannot run or did not finish; the message is meant for the user (one line)."""


class AlignCancelled(AlignError):
    """The user (or a callback returning False) cancelled the alignment; nothing was changed."""
