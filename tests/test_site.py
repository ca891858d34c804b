"""Pages that belong to no single app: the dashboard, logging in and out, the error pages, and an
accessibility smoke check over every page. The account page and its tokens: tests/accounts/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from presets.models import ParameterPreset
from tests.factories import make_preset, system_preset_names
from tests.html import Element, accessibility_problems, parse

pytestmark = pytest.mark.django_db


def page(response) -> Element:
    return parse(response.content)


def flashed(response) -> list[str]:
    return [message.text for message in page(response).by_id("messages").find_all("p")]


# The dashboard


def test_dashboard_counts_system_and_user_presets(signed_in, system_presets, user, other_user):
    make_preset(created_by=user)
    make_preset(created_by=other_user)
    make_preset(created_by=None)

    response = signed_in.get("/")

    assert response.status_code == 200
    stats = {link.attrs["href"]: link.text for link in page(response).find("ul", class_="stats").find_all("a")}
    assert stats["/presets/?is_system=true"] == f"{len(system_preset_names())} system presets"
    assert stats["/presets/?is_system=false"] == "3 user presets"


def test_dashboard_lists_the_eight_most_recently_changed_presets_newest_first(signed_in, user):
    now = timezone.now()
    for age in range(10):
        preset = make_preset(name=f"Aged {age}", created_by=user)
        ParameterPreset.objects.filter(pk=preset.pk).update(updated_at=now - timedelta(hours=age))
    stale = ParameterPreset.objects.get(name="Aged 9")

    response = signed_in.get("/")

    recent = page(response).find("table").find("tbody").find_all("tr")
    assert [row.find("a").text for row in recent] == [f"Aged {age}" for age in range(8)]
    assert recent[0].find("a").attrs["href"] == f"/presets/{ParameterPreset.objects.get(name='Aged 0').pk}/"
    assert f"/presets/{stale.pk}/" not in response.content.decode()


def test_dashboard_marks_system_presets_among_the_recent_ones(signed_in, system_presets):
    rows = page(signed_in.get("/")).find("table").find("tbody").find_all("tr")

    assert {row.find("a").text: row.find("span", class_="badge").text for row in rows} == {
        name: "System" for name in system_presets
    }


def test_dashboard_with_no_presets_invites_creating_one(signed_in):
    response = signed_in.get("/")

    assert "No presets yet." in page(response).find("main").text
    assert page(response).find("table") is None


def test_dashboard_needs_a_signed_in_user(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


# Logging in and out


def test_login_page_shows_the_form(client):
    response = client.get("/login/")

    assert response.status_code == 200
    form = page(response).find("main").find("form")
    assert {field.attrs["name"] for field in form.find_all("input")} >= {"username", "password"}


def test_logging_in_signs_the_user_in_and_goes_to_the_dashboard(client, user):
    response = client.post("/login/", {"username": "ada", "password": "pw-ada-123"})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session[SESSION_KEY] == str(user.pk)
    assert client.get("/").status_code == 200


def test_logging_in_returns_to_the_page_asked_for(client, user):
    response = client.post("/login/", {"username": "ada", "password": "pw-ada-123", "next": "/presets/new/"})

    assert response.status_code == 302
    assert response["Location"] == "/presets/new/"


def test_logging_in_never_follows_a_next_address_on_another_site(client, user):
    response = client.post("/login/", {"username": "ada", "password": "pw-ada-123", "next": "https://evil.test/"})

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_wrong_password_shows_the_form_again_with_an_error(client, user):
    response = client.post("/login/", {"username": "ada", "password": "wrong"})

    assert response.status_code == 200
    summary = page(response).find("div", class_="error-summary")
    assert "Please enter a correct username and password." in summary.text
    assert SESSION_KEY not in client.session


def test_a_signed_in_user_visiting_the_login_page_goes_to_the_dashboard(signed_in):
    response = signed_in.get("/login/")

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_logging_out_is_a_post_that_signs_the_user_out(signed_in):
    response = signed_in.post("/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert SESSION_KEY not in signed_in.session
    assert signed_in.get("/")["Location"] == "/login/?next=/"


def test_logging_out_by_get_is_refused(signed_in, user):
    response = signed_in.get("/logout/")

    assert response.status_code == 405
    assert signed_in.session[SESSION_KEY] == str(user.pk)


def test_every_page_offers_a_log_out_button_that_posts(signed_in):
    header = page(signed_in.get("/presets/")).find("header")

    form = header.find("form")
    assert form.attrs == {"method": "post", "action": "/logout/"}
    assert form.find("button").text == "Log out"


# Error pages


@pytest.mark.parametrize("url", ["/no/such/page/", "/presets/987654/"], ids=["unknown-address", "unknown-preset"])
def test_not_found_uses_the_sites_page(signed_in, url):
    response = signed_in.get(url)

    assert response.status_code == 404
    document = page(response)
    assert document.find("h1").text == "Not found"
    assert document.find("main").find("a").attrs["href"] == "/"
    assert document.find("nav") is not None  # the site's own layout, with its navigation


def test_forbidden_uses_the_sites_page_and_says_why(signed_in, system_presets):
    response = signed_in.get(f"/presets/{system_presets['Balanced'].pk}/delete/")

    assert response.status_code == 403
    document = page(response)
    assert document.find("h1").text == "Not allowed"
    assert "System presets are read-only; duplicate it to customize" in document.find("main").text


# Accessibility smoke check


PAGES = {
    "dashboard": lambda preset: "/",
    "presets-list": lambda preset: "/presets/",
    "presets-list-filtered": lambda preset: "/presets/?category=memory&runtime=vllm&is_system=false&search=x",
    "preset-detail": lambda preset: f"/presets/{preset.pk}/",
    "preset-create": lambda preset: "/presets/new/",
    "preset-edit": lambda preset: f"/presets/{preset.pk}/edit/",
    "preset-import": lambda preset: "/presets/import/",
    "preset-delete-confirm": lambda preset: f"/presets/{preset.pk}/delete/",
    "account": lambda preset: "/account/",
    "tasks-list": lambda preset: "/tasks/",
    "new-task": lambda preset: "/tasks/new/",
    "not-found": lambda preset: "/presets/987654/",
}


@pytest.mark.parametrize("url_of", PAGES.values(), ids=PAGES.keys())
def test_every_page_labels_its_controls_and_has_one_heading(signed_in, system_presets, user, url_of):
    preset = make_preset(name="Mine", metadata={"author": "ada"}, created_by=user)

    response = signed_in.get(url_of(preset))

    assert response.status_code in {200, 404}
    assert accessibility_problems(response.content) == []


def test_the_login_page_labels_its_controls_and_has_one_heading(client):
    response = client.get("/login/")

    assert response.status_code == 200
    assert accessibility_problems(response.content) == []


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/presets/new/", {"name": "", "parameters": "{", "metadata": "[]", "runtime": "x"}),
        ("/login/", {"username": "ada", "password": "wrong"}),
        ("/account/", {"name": "CI pipeline"}),
    ],
    ids=["preset-form-with-errors", "login-with-errors", "account-with-new-token"],
)
def test_pages_showing_errors_or_results_stay_accessible(signed_in, url, data):
    if url == "/login/":
        signed_in.logout()

    response = signed_in.post(url, data)

    assert response.status_code in {200, 422}
    assert accessibility_problems(response.content) == []


def test_import_page_with_problems_stays_accessible(signed_in):
    bad = SimpleUploadedFile("bad.json", b'{"version": "9", "preset": {}}', content_type="application/json")

    response = signed_in.post("/presets/import/", {"file": bad, "on_conflict": "fail"})

    assert response.status_code == 422
    assert accessibility_problems(response.content) == []


# The smoke check itself, so a page passing it means something


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ('<h1>T</h1><input name="q">', "<input {'name': 'q'}> has no label"),
        (
            '<h1>T</h1><label for="other">Q</label><input id="q" name="q">',
            "<input {'id': 'q', 'name': 'q'}> has no label",
        ),
        ('<h1>T</h1><select name="s"></select>', "<select {'name': 's'}> has no label"),
        ('<h1>T</h1><textarea name="t"></textarea>', "<textarea {'name': 't'}> has no label"),
        ('<h1>T</h1><input name="q" aria-labelledby="missing">', "<input {'name': 'q'}> has no label"),
        ('<h1>T</h1><img src="x.png">', "<img {'src': 'x.png'}> has no alt"),
        ("<p>No heading</p>", "expected exactly one <h1>, found 0"),
        ("<h1>One</h1><h1>Two</h1>", "expected exactly one <h1>, found 2"),
    ],
    ids=[
        "unlabelled-input",
        "label-for-another-id",
        "unlabelled-select",
        "unlabelled-textarea",
        "labelledby-a-missing-id",
        "image-without-alt",
        "no-h1",
        "two-h1",
    ],
)
def test_the_smoke_check_finds_each_kind_of_problem(html, problem):
    assert accessibility_problems(html) == [problem]


def test_the_smoke_check_accepts_each_way_of_labelling_a_control():
    html = """
    <h1>Title</h1>
    <label for="a">A</label><input id="a" name="a">
    <label>B <select name="b"></select></label>
    <textarea name="c" aria-label="C"></textarea>
    <span id="d-label">D</span><input name="d" aria-labelledby="d-label">
    <input type="hidden" name="e"><input type="submit"><input type="button" value="F">
    <img src="x.png" alt="">
    """

    assert accessibility_problems(html) == []
