"""The document model of the pages orch writes (``orch report``, ``orch compare --html``): a title and
one list of blocks (headings, paragraphs, lists, tables, figures), rendered as a self-contained HTML
file (figures embedded as data URIs, sortable tables by inline script; nothing fetched, no server
needed) and as Markdown whose figures are PNG files beside it.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    name: str  # file stem
    title: str
    png: bytes


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    sortable: bool = False


@dataclass
class Page:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # ("h2"|"p"|"ul", text or list), Table, Figure

    def h2(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def add(self, item: Table | Figure) -> None:
        self.blocks.append((type(item).__name__.lower(), item))


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        value += 0.0  # -0.0 shows as 0 (a value that is not zero shows its digits below)
        return f"{value:.{digits}g}" if 0 < abs(value) < 1e-3 else f"{value:.{digits}f}"
    return str(value)


SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th, column) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const rows = Array.from(body.rows);
  const key = (row) => { const text = row.cells[column].textContent; const n = parseFloat(text);
                         return isNaN(n) ? text : n; };
  const ascending = th.dataset.order !== "asc";
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (ascending ? 1 : -1));
  th.dataset.order = ascending ? "asc" : "desc";
  rows.forEach((row) => body.appendChild(row));
}));
"""

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
table.sortable th { cursor: pointer; background: #eef; }
figure { margin: 1em 0; } img { max-width: 100%; }
"""


def to_html(page: Page) -> str:
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(page.title)}</title>"
           f"<style>{STYLE}</style></head><body><h1>{html.escape(page.title)}</h1>"]
    for kind, item in page.blocks:
        if kind == "h2":
            out.append(f"<h2>{html.escape(item)}</h2>")
        elif kind == "p":
            out.append(f"<p>{html.escape(item)}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in item) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in item.header)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in item.rows)
            css = " class='sortable'" if item.sortable else ""
            out.append(f"<table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:
            data = base64.b64encode(item.png).decode("ascii")
            out.append(f"<figure><img alt='{html.escape(item.title)}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{html.escape(item.title)}</figcaption></figure>")
    out.append(f"<script>{SORT_SCRIPT}</script></body></html>")
    return "\n".join(out)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    cells = lambda row: "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"  # noqa: E731
    return "\n".join([cells(header), "|" + "---|" * len(header), *map(cells, rows)])


def to_markdown(page: Page, image_prefix: str) -> str:
    """Markdown; figure ``name`` is linked as ``<image_prefix><name>.png``."""
    out = [f"# {page.title}", ""]
    for kind, item in page.blocks:
        if kind == "h2":
            out += [f"## {item}", ""]
        elif kind == "p":
            out += [item, ""]
        elif kind == "ul":
            out += [f"- {x}" for x in item] + [""]
        elif kind == "table":
            out += [markdown_table(item.header, item.rows), ""]
        else:
            out += [f"![{item.title}]({image_prefix}{item.name}.png)", ""]
    return "\n".join(out)
