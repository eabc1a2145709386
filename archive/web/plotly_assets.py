"""plotly.js and its style sheets, served by the archive from the installed plotly package.

plotly.js inserts its CSS at run time through <style> elements, which the Content-Security-
Policy (style-src 'self') refuses, logging an error. It leaves that alone when the page already
holds an element with the id it would use (for its own rules, one also marked
`no-inline-styles`), so the chart pages link the same rules as style sheets under those ids;
the rules are read out of the very bundle that is served, so they always match its version.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources

SCRIPT = "plotly.min.js"
# The id plotly.js checks before inserting its own rules, and the class that makes it stop.
GLOBAL_STYLE_ID = "plotly.js-style-global"


class BundleChanged(RuntimeError):
    """The plotly.js bundle no longer has the shape this module reads: see its docstring."""


@cache
def script() -> bytes:
    return resources.files("plotly").joinpath("package_data", SCRIPT).read_bytes()


@cache
def version() -> str:
    match = re.search(rb"plotly\.js v([\d.]+)", script()[:400])
    if not match:
        raise BundleChanged("no version banner in plotly.min.js")
    return match.group(1).decode()


@cache
def etag(name: str) -> str:
    return hashlib.sha256(asset(name)).hexdigest()[:32]


def asset(name: str) -> bytes:
    if name == "plotly.min.js":
        return script()
    if name == "plotly.css":
        return plotly_css().encode()
    if name == "maplibre-gl.css":
        return maplibre()[1].encode()
    raise KeyError(name)


@cache
def plotly_css() -> str:
    """plotly.js's own rules (its table of `X …` selectors), in the order it ends up with."""
    text = script().decode()
    start = text.find('{"X,X div":')
    end = text.find("};for(", start)
    if start < 0 or end < 0:
        raise BundleChanged("plotly.js's table of style rules was not found")
    table = text[start : end + 1]
    pairs = re.findall(
        r"""(?:"((?:[^"\\]|\\.)*)"|(\w+)):(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""", table
    )
    rules = []
    for quoted, bare, double, single in pairs:
        selector = re.sub(r"^,", " ,", quoted or bare)
        selector = selector.replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        rules.append(f"{selector}{{{double or single}}}")
    if len(rules) != table.count(":") - _colons_in_values(pairs):
        raise BundleChanged("plotly.js's table of style rules did not parse")
    # plotly.js inserts each rule at index 0, so the last one it defines comes first.
    header = f"/* plotly.js v{version()}: its style rules, read from plotly.min.js */\n"
    return header + "\n".join(reversed(rules)) + "\n"


def _colons_in_values(pairs) -> int:
    return sum((q or b).count(":") + (d or s).count(":") for q, b, d, s in pairs)


@cache
def maplibre() -> tuple[str, str]:
    """The id and text of the MapLibre style element plotly.js adds when it loads."""
    text = script().decode()
    match = re.search(
        r"""getElementById\("([0-9a-f]{64})"\)\)\{var (\w+)=document\.createElement\("style"\);"""
        r"""\2\.id="\1",\2\.textContent='((?:[^'\\]|\\.)*)'""",
        text,
    )
    if not match:
        raise BundleChanged("plotly.js's MapLibre style element was not found")
    return match.group(1), match.group(3)


def maplibre_style_id() -> str:
    return maplibre()[0]
