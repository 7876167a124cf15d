"""A MkDocs hook (mkdocs.yml): links from a notebook's Markdown cells to other pages work in the site.

In ``docs/tutorial.ipynb`` a cell links ``[definitions](definitions.md)``, which GitHub and Jupyter
follow. mkdocs-jupyter renders the cells with nbconvert and keeps the link as written, so in the
site, where the notebook is ``tutorial/`` and the page ``definitions/``, it would reach nothing.
This rewrites each such link to the page's URL; a link to no page is left for ``site_checks`` to report.
"""

import posixpath
import re
from typing import Any

_MD_LINK = re.compile(r'href="([^":#?]+\.md)(#[^"]*)?"')


def on_page_content(html: str, page: Any, files: Any, **kwargs: Any) -> str:
    if not page.file.src_uri.endswith(".ipynb"):
        return html

    def to_page_url(match: re.Match[str]) -> str:
        path = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), match[1]))
        target = files.get_file_from_path(path)
        if target is None or not target.is_documentation_page():
            return match[0]
        return f'href="{target.url_relative_to(page.file)}{match[2] or ""}"'

    return _MD_LINK.sub(to_page_url, html)
