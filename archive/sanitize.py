"""Rich-text cleaning against an allowlist; the only module that imports nh3.

nh3 wraps Rust's ammonia. It replaced bleach, whose maintainers ended it in June 2026
with no further releases, security fixes included.
"""

import nh3

TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "cite",
    "code",
    "em",
    "h3",
    "h4",
    "h5",
    "h6",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "strong",
    "sub",
    "sup",
    "u",
    "ul",
}
ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}}
URL_SCHEMES = {"http", "https", "mailto"}


def clean_html(text: str) -> str:
    """Keep only allowlisted tags, attributes and URL schemes; drop scripts with their content."""
    return nh3.clean(
        text,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
