"""One self-contained HTML page: headings, tables, notes, preformatted text and figures
embedded as base64 PNG. No scripts, no external resources: it opens from a file, offline,
and prints.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable

from mailnet.metric_catalog import MISSING

STYLE = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #111; line-height: 1.4; }
h1 { font-size: 1.6em; border-bottom: 2px solid #333; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #999; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .9em; }
th, td { border: 1px solid #aaa; padding: .2em .6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
div.wide { overflow-x: auto; }
th { background: #eee; }
figure { margin: 1.2em 0 2em; page-break-inside: avoid; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #333; margin-top: .3em; }
p.note { background: #f4f4f4; border-left: 4px solid #888; padding: .4em .8em; }
pre { background: #f7f7f7; border: 1px solid #ccc; padding: .8em; overflow-x: auto;
      font-size: .82em; line-height: 1.3; }
nav ul { columns: 2; font-size: .9em; }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


class Page:
    """An HTML page built block by block; ``render()`` returns the document."""

    def __init__(self, title: str):
        self.title = title
        self._blocks: list[str] = []
        self._contents: list[tuple[str, str]] = []

    def heading(self, text: str, level: int = 2) -> None:
        anchor = f"s{len(self._contents) + 1}"
        if level == 2:
            self._contents.append((anchor, text))
        self._blocks.append(f'<h{level} id="{anchor}">{esc(text)}</h{level}>')

    def paragraph(self, text: str) -> None:
        self._blocks.append(f"<p>{esc(text)}</p>")

    def note(self, text: str) -> None:
        """A remark set apart, e.g. why a figure is missing."""
        self._blocks.append(f'<p class="note">{esc(text)}</p>')

    def table(
        self, rows: Iterable[Iterable[object]], header: Iterable[object] | None = None
    ) -> None:
        """A table of ``rows``; numbers are right-aligned."""
        out = ['<div class="wide"><table>']
        if header is not None:  # long dotted key paths may break after each dot
            out.append(
                "<tr>"
                + "".join(f"<th>{esc(h).replace('.', '.<wbr>')}</th>" for h in header)
                + "</tr>"
            )
        for row in rows:
            cells = []
            for value in row:
                text: object = value
                numeric = _looks_numeric(value)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    text, numeric = _number(value), True
                cells.append(
                    f'<td class="num">{esc(text)}</td>' if numeric else f"<td>{esc(text)}</td>"
                )
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table></div>")
        self._blocks.append("\n".join(out))

    def figure(self, name: str, png: bytes, caption: str, alt: str, svg_file: str = "") -> None:
        """A figure embedded as base64 PNG with its caption; ``svg_file`` (relative to the
        page) is linked as the vector version."""
        data = base64.b64encode(png).decode("ascii")
        link = f' <a href="{esc(svg_file)}">SVG</a>' if svg_file else ""
        self._blocks.append(
            f'<figure id="fig-{esc(name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{esc(alt)}"><figcaption>{esc(caption)}{link}</figcaption></figure>'
        )

    def pre(self, text: str) -> None:
        self._blocks.append(f"<pre>{esc(text)}</pre>")

    def render(self) -> str:
        contents = "".join(f'<li><a href="#{a}">{esc(t)}</a></li>' for a, t in self._contents)
        return "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en">',
                "<head>",
                '<meta charset="utf-8">',
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{esc(self.title)}</title>",
                f"<style>{STYLE}</style>",
                "</head>",
                "<body>",
                f"<h1>{esc(self.title)}</h1>",
                f"<nav><ul>{contents}</ul></nav>" if contents else "",
                *self._blocks,
                "</body>",
                "</html>",
                "",
            ]
        )


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return MISSING
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) >= 1e-3 else f"{value:.3g}"


_NUMERIC = re.compile(r"(< )?-?[0-9][0-9,.]*(e[-+]?[0-9]+)?( ?(%|[a-z]{1,4}))?")
"""A number, optionally with its unit: ``"1,234"``, ``"72.50 %"``, ``"9.12 min"``."""


def _looks_numeric(text: object) -> bool:
    return isinstance(text, str) and _NUMERIC.fullmatch(text.strip()) is not None
