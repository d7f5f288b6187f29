"""Test helper: a stand-in for Blender's UILayout that records what a panel's ``draw`` puts in it
(a real UILayout needs a window)."""


class FakeLayout:
    """Records every layout call as ``(name, args, kwargs)`` in ``log``; each call returns a new
    recording layout (rows, columns, boxes)."""

    def __init__(self, log):
        self.log = log
        self.use_property_split = self.use_property_decorate = False
        self.active = self.enabled = True
        self.scale_y = 1.0

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.log.append((name, args, kwargs))
            return FakeLayout(self.log)
        return record
