"""The document model of the pages orch writes (``orch report``, ``orch compare --html``, ``orch
overview``): a title and one list of blocks (headings, paragraphs, lists, tables, figures, filters),
rendered as a self-contained HTML file (figures embedded as data URIs, inline CSS and scripts that
sort tables and filter their rows; nothing fetched, no server needed) and as Markdown whose figures
are PNG files beside it. Every string is escaped where it goes into HTML.
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


@dataclass(frozen=True)
class Link:
    text: str
    href: str  # a relative URL: a page links only to files beside it, never to anything fetched


@dataclass(frozen=True)
class Cell:
    """A table cell that is more than its text: links among its text, a key to sort by."""

    parts: tuple[str | Link, ...]
    sort: float | str | None = None  # what its column sorts by (None: its text, as a number where it starts with one)

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text for p in self.parts)


@dataclass
class Table:
    header: list[str]
    rows: list[list[str | Cell]]
    sortable: bool = False
    row_data: list[dict[str, str]] = field(default_factory=list)  # per row: the data-* attributes filters read


@dataclass
class Filters:
    """Controls that show only the rows of the page's table (``Table.row_data``) of one state (of
    ``states``), whose name holds the text typed, submitted within the dates picked."""

    states: list[str]


@dataclass
class Page:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # ("h2"|"p"|"ul", text or list), Table, Figure, Filters

    def h2(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def add(self, item: Table | Figure | Filters) -> None:
        self.blocks.append((type(item).__name__.lower(), item))


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        value += 0.0  # -0.0 shows as 0 (a value that is not zero shows its digits below)
        return f"{value:.{digits}g}" if 0 < abs(value) < 1e-3 else f"{value:.{digits}f}"
    return str(value)


SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const rows = Array.from(body.rows);
  const key = (row) => {
    const cell = row.cells[th.cellIndex];
    const sort = cell.dataset.sort;
    if (sort !== undefined) { return sort !== "" && !isNaN(sort) ? Number(sort) : sort; }
    const n = parseFloat(cell.textContent); return isNaN(n) ? cell.textContent : n;
  };
  const ascending = th.dataset.order !== "asc";
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (ascending ? 1 : -1));
  th.dataset.order = ascending ? "asc" : "desc";
  rows.forEach((row) => body.appendChild(row));
}));
"""

FILTER_SCRIPT = """
const filter = (name) => document.querySelector(`[data-filter='${name}']`).value;
const applyFilters = () => {
  const state = filter("state"), name = filter("name").toLowerCase(), from = filter("from"), to = filter("to");
  const rows = Array.from(document.querySelectorAll("table.filterable tbody tr"));
  rows.forEach((row) => {
    const day = row.dataset.submitted.slice(0, 10);
    row.hidden = !((!state || row.dataset.state === state) && row.dataset.name.toLowerCase().includes(name)
                   && (!from || day >= from) && (!to || day <= to));
  });
  document.getElementById("shown").textContent = `${rows.filter((row) => !row.hidden).length} of ${rows.length} shown`;
};
document.querySelectorAll("[data-filter]").forEach((control) => ["input", "change"].forEach(
  (event) => control.addEventListener(event, applyFilters)));
applyFilters();
"""

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
table.sortable th { cursor: pointer; background: #eef; }
figure { margin: 1em 0; } img { max-width: 100%; }
form.filters { margin: 0.5em 0; } form.filters label { margin-right: 1em; }
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
            out.append(_table(item))
        elif kind == "filters":
            out.append(_filters(item))
        else:
            data = base64.b64encode(item.png).decode("ascii")
            out.append(f"<figure><img alt='{html.escape(item.title)}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{html.escape(item.title)}</figcaption></figure>")
    scripts = SORT_SCRIPT + (FILTER_SCRIPT if any(kind == "filters" for kind, _ in page.blocks) else "")
    out.append(f"<script>{scripts}</script></body></html>")
    return "\n".join(out)


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join(f"<tr{_attributes(data)}>" + "".join(map(_cell, row)) + "</tr>"
                   for row, data in zip(table.rows, table.row_data or [{}] * len(table.rows)))
    css = " ".join(c for c, on in (("sortable", table.sortable), ("filterable", table.row_data)) if on)
    css = f" class='{css}'" if css else ""
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _attributes(data: dict[str, str]) -> str:
    return "".join(f" data-{name}=\"{html.escape(value)}\"" for name, value in data.items())


def _cell(cell: str | Cell) -> str:
    if isinstance(cell, str):
        return f"<td>{html.escape(cell)}</td>"
    parts = "".join(html.escape(p) if isinstance(p, str)
                    else f"<a href=\"{html.escape(p.href)}\">{html.escape(p.text)}</a>" for p in cell.parts)
    return f"<td{_attributes({'sort': str(cell.sort)} if cell.sort is not None else {})}>{parts}</td>"


def _filters(filters: Filters) -> str:
    states = "".join(f"<option>{html.escape(s)}</option>" for s in filters.states)
    return ("<form class='filters'><label>state <select data-filter='state'><option value=''>any</option>"
            f"{states}</select></label><label>name <input type='search' data-filter='name'></label>"
            "<label>submitted from <input type='date' data-filter='from'></label>"
            "<label>to <input type='date' data-filter='to'></label><span id='shown'></span></form>")


def markdown_table(header: list[str], rows: list[list[str | Cell]]) -> str:
    cells = lambda row: "| " + " | ".join((c if isinstance(c, str) else c.text()).replace("|", "\\|")  # noqa: E731
                                          for c in row) + " |"
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
        elif kind == "filters":
            continue  # the HTML page's controls
        else:
            out += [f"![{item.title}]({image_prefix}{item.name}.png)", ""]
    return "\n".join(out)
