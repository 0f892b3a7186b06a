"""A small HTML reader for the report tests: tags, links, sections and the text of <pre>s."""

from __future__ import annotations

from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()
        self.metas: list[dict[str, str]] = []
        self.pres: list[str] = []
        self.text: list[str] = []
        self._pre: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = {k: v or "" for k, v in attrs}
        for k, v in a.items():
            if k in ("src", "href", "xlink:href", "action", "srcset", "data"):
                self.links.append((tag, k, v))
        if "id" in a and tag == "section":
            self.ids.add(a["id"])
        if tag == "meta":
            self.metas.append(a)
        if tag == "pre":
            self._pre = []

    def handle_endtag(self, tag):
        if tag == "pre" and self._pre is not None:
            self.pres.append("".join(self._pre))
            self._pre = None

    def handle_data(self, data):
        self.text.append(data)
        if self._pre is not None:
            self._pre.append(data)

    def meta(self, http_equiv: str) -> str | None:
        for m in self.metas:
            if m.get("http-equiv", "").lower() == http_equiv.lower():
                return m.get("content")
        return None

    def outside_links(self) -> list[tuple[str, str, str]]:
        """Links that would load or lead to anything but this page or a sibling file."""
        out = []
        for tag, attr, v in self.links:
            low = v.strip().lower()
            if low.startswith("#"):
                continue
            if (
                "://" in low
                or low.startswith(("//", "data:", "javascript:", "mailto:"))
                or tag != "a"
            ):
                out.append((tag, attr, v))
        return out
