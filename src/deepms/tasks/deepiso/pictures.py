"""deepiso pictures: a map with feature boxes per detector, and a few isotope envelopes.

Why boxes and not hulls: a box (RT span x mono..last-isotope m/z) is what every detector's output
has (peers and truth included), so the same drawing compares them all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deepms.io.ms1map import Ms1Map
from deepms.tasks.deepiso.detect import ISOTOPE_SPACING

COLOURS = {
    "deepms": "red",
    "truth": "lime",
    "openms_reference": "deepskyblue",
    "openms_centroided": "blue",
    "openms_centroided_test": "cyan",
    "biosaur2": "orange",
}


def map_with_features(
    ms1: Ms1Map, named: dict[str, pd.DataFrame], title: str, max_boxes: int = 400
) -> Any:
    """Peaks as a log-intensity scatter (RT x m/z) and each detector's features as boxes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    figure, ax = plt.subplots(figsize=(10, 6))
    rt = ms1.rt[ms1.spectrum_index()]
    order = np.argsort(ms1.intensity)
    ax.scatter(
        rt[order],
        ms1.mz[order],
        c=np.log10(ms1.intensity[order] + 1),
        s=1,
        cmap="Greys",
        rasterized=True,
    )
    for i, (name, features) in enumerate(named.items()):
        colour = COLOURS.get(name, f"C{i}")
        for row in features.head(max_boxes).itertuples(index=False):
            n = int(row.n_isotopes) if np.isfinite(row.n_isotopes) else 1
            z = max(int(row.charge), 1) if np.isfinite(row.charge) else 1
            width = max(float(row.rt_end) - float(row.rt_start), 1.0)
            height = max((n - 1) * ISOTOPE_SPACING / z, 0.05)
            ax.add_patch(
                Rectangle(
                    (float(row.rt_start), float(row.mz)),
                    width,
                    height,
                    fill=False,
                    edgecolor=colour,
                    linewidth=0.8,
                )
            )
        ax.plot([], [], color=colour, label=f"{name} ({len(features)})")
    ax.set_xlabel("RT (s)")
    ax.set_ylabel("m/z")
    ax.set_title(f"{title}: features per detector")
    ax.legend(loc="upper right", fontsize=8)
    return figure


def envelopes(ms1: Ms1Map, features: pd.DataFrame, n: int = 4, ppm: float = 15.0) -> Any:
    """The most intense features' isotope XICs (one line per isotope trace found)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = features.sort_values("intensity_sum", ascending=False).head(n)
    figure, axes = plt.subplots(1, max(len(top), 1), figsize=(4 * max(len(top), 1), 3.2))
    axes = np.atleast_1d(axes)
    for ax, row in zip(axes, top.itertuples(index=False), strict=False):
        for k in range(int(row.n_isotopes)):
            mz = float(row.mz) + k * ISOTOPE_SPACING / int(row.charge)
            part = ms1.window(
                float(row.rt_start), float(row.rt_end), mz * (1 - ppm * 1e-6), mz * (1 + ppm * 1e-6)
            )
            if not part.n_peaks:
                continue
            xic = np.bincount(part.spectrum_index(), weights=part.intensity, minlength=len(part))
            ax.plot(part.rt, xic, label=f"M+{k}")
        ax.set_title(f"m/z {row.mz:.4f} z={int(row.charge)} q={row.quality:.2f}", fontsize=9)
        ax.set_xlabel("RT (s)")
        ax.legend(fontsize=7)
    figure.tight_layout()
    return figure
