"""Saving a report figure as PNG and SVG and embedding it in a page."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from mailnet.output import atomic_write_bytes
from mailnet.report.page import Page

DPI = 120
MAX_TABLE_ROWS = 60
"""Longest table a page shows (listings, failed runs, grid points)."""


def save_figure(figure: Figure, out: Path, name: str) -> bytes:
    """Write ``figure`` as ``out/name.png`` and ``out/name.svg``; return the PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    png = buffer.getvalue()
    atomic_write_bytes(out / f"{name}.png", png)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    atomic_write_bytes(out / f"{name}.svg", buffer.getvalue())
    return png


@dataclass(frozen=True)
class Figures:
    """Writes figures into directory ``out`` and embeds them in ``page``."""

    page: Page
    out: Path

    def add(
        self, name: str, make: Callable[[], Figure | None], caption: str, missing: str = ""
    ) -> bool:
        """Draw one figure (``make()``) into the page as ``name``, or, if ``make`` returns
        ``None``, a note ``missing`` saying why there is none. True if a figure was drawn."""
        figure = make()
        if figure is None:
            self.page.note(missing)
            return False
        title = figure.get_suptitle() or figure.axes[0].get_title()
        self.page.figure(
            name,
            save_figure(figure, self.out, name),
            caption,
            alt=" ".join(title.split()),
            svg_file=f"{name}.svg",
        )
        return True
