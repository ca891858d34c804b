"""Reading rendered pages in tests: a small element tree built with html.parser, and the
accessibility smoke check every page goes through."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Inputs a person never types into or chooses: they need no label of their own.
UNLABELLED_INPUT_TYPES = {"hidden", "submit", "button", "reset"}


@dataclass(eq=False)
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None = None
    children: list[Element | str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs}>"

    def iter(self) -> Iterator[Element]:
        """This element and every element inside it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Elements by tag and exact attribute values; ``class_`` matches one of the classes."""
        wanted_class = attrs.pop("class_", None)
        found = []
        for element in self.iter():
            if tag is not None and element.tag != tag:
                continue
            if any(element.attrs.get(name.replace("_", "-")) != value for name, value in attrs.items()):
                continue
            if wanted_class is not None and wanted_class not in element.attrs.get("class", "").split():
                continue
            found.append(element)
        return found

    def find(self, tag: str | None = None, **attrs: str) -> Element | None:
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def by_id(self, element_id: str) -> Element:
        found = [element for element in self.iter() if element.attrs.get("id") == element_id]
        assert len(found) == 1, f"expected one element with id {element_id!r}, found {len(found)}"
        return found[0]

    def ancestors(self) -> Iterator[Element]:
        parent = self.parent
        while parent is not None:
            yield parent
            parent = parent.parent

    @property
    def raw_text(self) -> str:
        """The text inside, exactly (a textarea's content as the user will see it)."""
        return "".join(child if isinstance(child, str) else child.raw_text for child in self.children)

    @property
    def text(self) -> str:
        """The text inside with runs of whitespace made one space, as a reader would see it."""
        return re.sub(r"\s+", " ", self.raw_text).strip()


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def _element(self, tag: str, attrs: list[tuple[str, str | None]]) -> Element:
        element = Element(tag, {name: value or "" for name, value in attrs}, parent=self.stack[-1])
        self.stack[-1].children.append(element)
        return element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = self._element(tag, attrs)
        if tag not in VOID_TAGS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        # Close up to the matching open element; a stray end tag changes nothing.
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str | bytes) -> Element:
    if isinstance(html, bytes):
        html = html.decode()
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def _describe(element: Element) -> str:
    shown = {name: element.attrs[name] for name in ("id", "name", "type", "src") if name in element.attrs}
    return f"<{element.tag} {shown}>"


def accessibility_problems(html: str | bytes) -> list[str]:
    """What the smoke check finds wrong with a page: unlabelled controls, images without alt, not one <h1>."""
    document = parse(html)
    ids = {element.attrs["id"] for element in document.iter() if element.attrs.get("id")}
    label_targets = {label.attrs["for"] for label in document.find_all("label") if label.attrs.get("for")}
    problems = []
    for control in document.iter():
        if control.tag not in {"input", "select", "textarea"}:
            continue
        if control.tag == "input" and control.attrs.get("type", "text").lower() in UNLABELLED_INPUT_TYPES:
            continue
        labelled_by = control.attrs.get("aria-labelledby", "").split()
        if (
            (control.attrs.get("id") and control.attrs["id"] in label_targets)
            or any(ancestor.tag == "label" for ancestor in control.ancestors())
            or control.attrs.get("aria-label", "").strip()
            or (labelled_by and all(target in ids for target in labelled_by))
        ):
            continue
        problems.append(f"{_describe(control)} has no label")
    problems += [f"{_describe(image)} has no alt" for image in document.find_all("img") if "alt" not in image.attrs]
    headings = len(document.find_all("h1"))
    if headings != 1:
        problems.append(f"expected exactly one <h1>, found {headings}")
    return problems
