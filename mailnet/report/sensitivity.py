"""The figure of a sensitivity analysis: each metric's indices per key, with intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mailnet import metric_catalog as catalog
from mailnet.report.style import new_grid


def indices_figure(
    indices: pd.DataFrame, method: str, ncols: int = 2, *, points: int = 0, replications: int = 0
) -> Figure:
    """One panel per metric: Morris ``mu_star`` (bars, with ``mu_star_conf``) and
    ``sigma`` (dots), or Sobol' ``ST`` (bars) and ``S1`` (dots), each with its 95 %
    interval; keys ordered by the first index, largest on top. ``points`` and
    ``replications`` (the design's size), when given, are stated in the title."""
    main, conf, second = (
        ("mu_star", "mu_star_conf", "sigma") if method == "morris" else ("ST", "ST_conf", "S1")
    )
    metrics = list(dict.fromkeys(indices["metric"]))
    nrows = -(-len(metrics) // ncols)
    keys = len(indices["key"].unique())
    figure, axes = new_grid(
        nrows, ncols, height=1.0 + (0.9 + 0.32 * keys) * nrows, width=6.0 * ncols
    )
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        rows = indices[indices["metric"] == metric].sort_values(main)
        y = np.arange(len(rows))
        ax.barh(y, rows[main], xerr=rows[conf], color="#4c72b0", alpha=0.8, label=main)
        ax.plot(rows[second], y, "o", color="#dd8452", label=second)
        ax.set_yticks(y, list(rows["key"]), fontsize="small")
        ax.set_title(catalog.title(metric), fontsize="small")
        ax.axvline(0.0, color="0.5", linewidth=0.6)
    for ax in axes.ravel()[len(metrics) :]:
        ax.set_visible(False)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize="small")
    what = "Morris screening" if method == "morris" else "Sobol' indices"
    size = f"; n = {points} design points x {replications} replications" if points else ""
    figure.suptitle(f"{what}, with 95 % intervals{size}")
    return figure
