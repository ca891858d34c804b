"""Template source rules that Django does not enforce itself."""

from __future__ import annotations

import re

from django.conf import settings

# Django's {# #} is one line only: one that spans lines is printed to the page as text.
MULTI_LINE_COMMENT = re.compile(r"\{#(?:(?!#\}).)*\n", re.DOTALL)


def test_no_template_has_a_multi_line_short_comment():
    found = [
        f"{path.relative_to(settings.BASE_DIR)}:{text[: match.start()].count(chr(10)) + 1}"
        for path in sorted((settings.BASE_DIR / "templates").rglob("*.html"))
        for text in [path.read_text()]
        for match in MULTI_LINE_COMMENT.finditer(text)
    ]

    assert found == [], "use {% comment %} for these: " + ", ".join(found)


def test_the_new_task_page_prints_no_template_syntax(signed_in, system_presets):
    chosen = ",".join(str(system_presets[name].pk) for name in ("High Throughput", "Memory Efficient"))
    response = signed_in.get(f"/tasks/new/?presets={chosen}")

    text = re.sub(r"<[^>]*>", " ", response.content.decode())
    assert response.status_code == 200
    for syntax in ("{#", "#}", "{%", "%}"):
        assert syntax not in text, syntax
