"""Checks of the built site, offline: every internal link and anchor resolves, nothing is loaded
from another host, no formula is left as raw TeX."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

class _Page(HTMLParser):
    """Ids, links and resources of one HTML page, and its text outside code and math."""
    SKIP = {"script", "style", "pre", "code", "mjx-container", "math"}
    LOADED_LINKS = {"stylesheet", "preload", "modulepreload", "icon"}     # fetched as the page loads

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.loads, self.text = set(), [], [], []
        self._skip = []          # open elements whose text is not prose

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if a.get("src"):                                   # script, img, iframe, source
            self.loads.append(a["src"])
        if tag == "link" and a.get("href") and set(a.get("rel", "").split()) & self.LOADED_LINKS:
            self.loads.append(a["href"])
        classes = a.get("class", "").split()
        if tag in self.SKIP or "math" in classes or "highlight" in classes:
            self._skip.append(tag)
        elif self._skip and tag == self._skip[-1]:
            self._skip.append(tag)

    def handle_endtag(self, tag):
        if self._skip and tag == self._skip[-1]:
            self._skip.pop()

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


RAW_TEX = re.compile(r"\$[^$\s]|[^$\s]\$|\\(?:times|frac|sum|math\w+|left|right|alpha|beta|theta|sigma|log|exp|"
                     r"cdot|tfrac|lfloor|rfloor|partial|top|tilde)(?![a-zA-Z])")


def check_site(site: Path) -> list[str]:
    """Problems of a built site, offline: internal links and anchors that do not resolve,
    resources loaded from another host, formulas left as raw TeX."""
    site = site.resolve()
    pages = {}
    for path in sorted(site.rglob("*.html")):
        parser = _Page()
        parser.feed(path.read_text(encoding="utf-8"))
        pages[path] = parser
    problems = []
    for path, page in pages.items():
        where = path.relative_to(site)
        for url in page.loads:
            if urlsplit(url).scheme in ("http", "https") or url.startswith("//"):
                problems.append(f"{where}: loads {url} from another host (the book must work offline)")
        for url in page.links + page.loads:
            parts = urlsplit(url)
            if parts.scheme or url.startswith(("//", "mailto:", "data:", "javascript:")):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if site != target and site not in target.parents:
                problems.append(f"{where}: link {url} leaves the site")
            elif not target.is_file():
                problems.append(f"{where}: broken link {url}")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in pages[target].ids:
                problems.append(f"{where}: link {url}: no #{parts.fragment} in {target.relative_to(site)}")
        text = " ".join(page.text)
        for m in RAW_TEX.finditer(text):
            problems.append(f"{where}: unrendered formula near {text[max(0, m.start() - 30):m.end() + 30]!r}")
            break
    return problems
