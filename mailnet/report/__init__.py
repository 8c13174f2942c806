"""Reports: figures and one self-contained HTML page from a run or sweep directory.

Every figure function takes the tables of a results directory as DataFrames and returns a
``matplotlib.figure.Figure`` (drawn on the Agg canvas; no display needed), so the same
figures work in notebooks::

    import pandas as pd
    from mailnet.report import latency_figure, make_report
    latency_figure(pd.read_parquet("results/baseline/messages.parquet"))
    make_report("results/baseline")          # -> results/baseline/report/report.html

This package never imports simpy: it reads only Parquet and JSON.
"""

from typing import TYPE_CHECKING

from mailnet.lazy import export_lazily

if TYPE_CHECKING:
    from mailnet.report.build import make_report, save_figure
    from mailnet.report.delivery import (
        attempts_figure,
        latency_figure,
        outcomes_figure,
        reasons_figure,
    )
    from mailnet.report.inputs import load_run, load_sweep
    from mailnet.report.sweeps import headline_metrics, sweep_figure, sweep_panels_figure
    from mailnet.report.timelines import listings_figure, queue_figure, reputation_figure

__all__ = [
    "attempts_figure",
    "headline_metrics",
    "latency_figure",
    "listings_figure",
    "load_run",
    "load_sweep",
    "make_report",
    "outcomes_figure",
    "queue_figure",
    "reasons_figure",
    "reputation_figure",
    "save_figure",
    "sweep_figure",
    "sweep_panels_figure",
]

# matplotlib and pandas load with the first name used, not with the package
export_lazily(
    __name__,
    {
        "mailnet.report.build": ["make_report", "save_figure"],
        "mailnet.report.delivery": [
            "attempts_figure",
            "latency_figure",
            "outcomes_figure",
            "reasons_figure",
        ],
        "mailnet.report.inputs": ["load_run", "load_sweep"],
        "mailnet.report.sweeps": ["headline_metrics", "sweep_figure", "sweep_panels_figure"],
        "mailnet.report.timelines": ["listings_figure", "queue_figure", "reputation_figure"],
    },
)
