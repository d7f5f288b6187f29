"""Regenerate the committed VLFeat reference outputs (needs libvl and scikit-image).

    .venv/bin/python tests/data/make_vlfeat_refs.py

Writes ``vlfeat_<case>_image.npy`` (float32 ``(C, H, W)`` input in [0, 1]) and
``vlfeat_<case>_features.npy`` (libvl's ``vl_hog`` UoCTTI output ``(3n + 4, Hc, Wc)``, float32) for
every case of ``tests/vlfeat_ref.REFERENCE_CASES``. Sizes are deliberately not multiples of the cell.
"""
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from vlfeat_ref import REFERENCE_CASES, vlfeat_hog  # noqa: E402


def case_image(name: str) -> np.ndarray:
    """The deterministic input of a reference case, float32 (C, H, W)."""
    from skimage import data

    if name.startswith("camera"):
        pixels = data.camera()[180:229, 200:261][None]  # 49 x 61, gray
        image = pixels / 255.0
    elif name.startswith("astronaut"):
        pixels = data.astronaut()[60:117, 180:223].transpose(2, 0, 1)  # 57 x 43, RGB
        image = pixels / 255.0
    elif name.startswith("random_gray"):
        image = np.random.default_rng(7).random((1, 22, 27))
    elif name.startswith("random_rgb"):
        image = np.random.default_rng(8).random((3, 19, 26))
    else:
        raise KeyError(name)
    return image.astype(np.float32)


def main() -> None:
    for name, params in REFERENCE_CASES.items():
        image = case_image(name)
        features = vlfeat_hog(
            image, params["cell_size"], params["num_bins"], "uoctti", params["bilinear"]
        )
        np.save(HERE / f"vlfeat_{name}_image.npy", image)
        np.save(HERE / f"vlfeat_{name}_features.npy", features)
        print(f"{name}: image {image.shape} -> features {features.shape}")


if __name__ == "__main__":
    main()
