"""Every API operation in our OpenAPI schema, fuzzed in-process by schemathesis.

The schema is the one ``/api/schema/`` serves; requests go straight to the WSGI app, as a
logged-in user (a session cookie and its CSRF token), inside the test database's transaction. For each operation a
fixed number of generated requests (deterministic: the same ones every run) must never get a
5xx, and every response must match the schema's description of it. Every operation passes every
check schemathesis has: valid requests accepted, invalid ones refused, no status code or header
the schema does not name.
"""

from __future__ import annotations

import os
import re

import jsonschema_rs
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, settings
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.openapi.checks import UseAfterFree
from schemathesis.specs.openapi.checks import positive_data_acceptance, use_after_free

from autotuner.wsgi import application
from engines.catalogue import for_engine
from engines.registry import engine_names
from presets.validators import normalize_flag
from tests.factories import make_preset, make_task, make_token_key

pytestmark = pytest.mark.django_db

# CI runs at least 100 per operation; a local run stays quick with 25 (CI=true locally runs CI's number).
EXAMPLES_PER_OPERATION = 100 if os.environ.get("CI") == "true" else 25
STATEFUL_SCENARIOS = 100 if os.environ.get("CI") == "true" else 25

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def connection_kept_open():
    """Django closes the database connection after each request; here that connection holds the test's
    transaction, so it must stay open (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def logged_in(user, connection_kept_open) -> dict[str, dict[str, str]]:
    """The headers of an API client: a token (schemathesis checks that a request without it is refused)."""
    make_preset(name="Fuzz target", created_by=user)  # something for the id paths to find
    return {"headers": {"Authorization": f"Token {make_token_key(user)}"}}


# What the schema cannot say, so that a check would flag it, by operation. An uploaded file must
# hold a preset document, which OpenAPI cannot require of multipart data (the JSON body of the same
# operation is described and fully checked).
CANNOT_SAY = {"POST /api/presets/import/": [positive_data_acceptance]}

# The 400s for schema-valid data that no schema can foresee, each described in its operation's
# description (GRID_SCHEMA, WHOLE_TASK_RULES, the import): (path, message) patterns. Values an
# engine refuses depend on the runtime sent and the flag under any of its spellings (about 850
# flags; JSON flags take only valid JSON text); the rest depend on the grid's size or the stored task.
CANNOT_FORESEE = [
    # A value of a flag an engine knows: the presets API and an imported document name the value...
    (r"(preset\.|presets\[\d+\]\.)?parameters\.(?P<flag>[^\[]+)(\[\d+\])?", r".*"),
    # ...and the tasks API names it in the message.
    (r"parameters", r"(?P<flag>[a-z0-9][a-z0-9.-]*)(\[\d+\])?: .*"),
    # A grid search over more runnable combinations than it may run.
    (r"optimization_strategy", r"The grid has [\d,]+ runnable combinations; .*"),
    # Random or bayesian search without max_experiments (on a change, the stored task decides).
    (r"max_experiments", r"Required for random and bayesian search: .*"),
    # A range's top below its bottom (JSON Schema cannot compare two fields; on a change, the stored task decides).
    (r"(input|output)_tokens_max", r"The range's top must be at least .*"),
    # Goodput without an SLO (the same: the stored task's SLOs decide on a change).
    (r"objective", r"Goodput is the highest load meeting every SLO: .*"),
]


def cannot_be_foreseen(response) -> bool:
    """A 400 made only of refusals listed in CANNOT_FORESEE (a flag named must be an engine's)."""
    if response.status_code != 400:
        return False
    errors = response.json().get("errors") or []
    return bool(errors) and all(unforeseeable(error["path"], error["message"]) for error in errors)


def unforeseeable(path: str, message: str) -> bool:
    for path_pattern, message_pattern in CANNOT_FORESEE:
        at, saying = re.fullmatch(path_pattern, path), re.fullmatch(message_pattern, message, re.DOTALL)
        if at and saying:
            flag = at.groupdict().get("flag") or saying.groupdict().get("flag")
            return flag is None or is_engine_flag(normalize_flag(flag))
    return False


def is_engine_flag(name: str) -> bool:
    return any(catalogue.lookup(name) for catalogue in map(for_engine, engine_names()) if catalogue)


def valid_data_accepted(ctx, response, case):
    """schemathesis' positive_data_acceptance, except for the refusals in CANNOT_FORESEE (and for
    an operation whose valid data CANNOT_SAY describes)."""
    if cannot_be_foreseen(response) or positive_data_acceptance in CANNOT_SAY.get(case.operation.label, []):
        return None
    return positive_data_acceptance(ctx, response, case)


def deleted_stays_deleted(ctx, response, case):
    """schemathesis' use_after_free, except for a deleted preset restored from the trash since
    (``POST /api/presets/trash/{id}/restore/``): the check knows no way back but a new create."""
    try:
        return use_after_free(ctx, response, case)
    except UseAfterFree as failure:
        if not restored_since(ctx, failure.deleted_case_id, case):
            raise
    return None


def restored_since(ctx, deleted_case_id, case) -> bool:
    """Whether the preset a DELETE removed is out of the trash again when ``case`` runs."""
    preset, restored = None, False
    for earlier in ctx.internals.find_all_cases():
        if earlier.id == case.id:
            break
        if earlier.id == deleted_case_id:
            preset = str(earlier.path_parameters["id"])
        elif preset is not None and str((earlier.path_parameters or {}).get("id")) == preset:
            answer = ctx.internals.find_response(case_id=earlier.id)
            if answer is not None and 200 <= answer.status_code < 300:
                restored = {RESTORE: True, DELETE: False}.get(earlier.operation.label, restored)
    return restored


RESTORE, DELETE = "POST /api/presets/trash/{id}/restore/", "DELETE /api/presets/{id}/"


def checks_for(case) -> dict:
    """Every check, with positive_data_acceptance and use_after_free narrowed to what they can know."""
    cannot_say = CANNOT_SAY.get(case.operation.label, [])
    return {
        "excluded_checks": [positive_data_acceptance, use_after_free, *cannot_say],
        "additional_checks": [valid_data_accepted, deleted_stays_deleted],
    }


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_never_fails_and_answers_as_documented(case, logged_in):
    case.call_and_validate(**logged_in, **checks_for(case))


def test_api_holds_together_over_sequences_of_calls(logged_in):
    """The stateful phase: chains that schemathesis infers from the schema (a created preset's id
    into its retrieve, update, delete, versions, export; a created task's into its plan, start,
    cancel...), each step checked as above, plus the stateful checks (a deleted resource is gone,
    a created one can be read)."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self):
            # Each scenario starts from the same data: Hypothesis requires that a scenario replayed
            # draws as it did, and what a step draws depends on what earlier steps were answered.
            self.scenario = transaction.atomic()
            self.scenario.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self.scenario.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            return logged_in

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                headers=kwargs.get("headers"),
                transport_kwargs=kwargs,
                recorder=self.recorder,
                **checks_for(case),
            )

    run_state_machine_as_test(
        Workflow, settings=settings(FUZZ_SETTINGS, max_examples=STATEFUL_SCENARIOS, phases=[Phase.generate])
    )


TASK = {"name": "Refused", "model": "m", "runtime": "vllm"}
LET_THROUGH, CAUGHT = True, False


@pytest.mark.parametrize(
    ("path", "body", "let_through"),
    [
        pytest.param(
            "/api/presets/",
            {"name": "P", "runtime": "vllm", "parameters": {"max-num-seqs": [0]}},
            LET_THROUGH,
            id="preset-a-value-the-engine-refuses",
        ),
        pytest.param(
            "/api/tasks/",
            {**TASK, "parameters": {"max_num_seqs": [0]}},
            LET_THROUGH,
            id="task-a-value-the-engine-refuses",
        ),
        pytest.param(
            "/api/tasks/",
            {**TASK, "parameters": {"max-num-seqs": [1]}, "optimization_strategy": "random"},
            LET_THROUGH,
            id="task-random-search-without-a-cap",
        ),
        pytest.param(
            "/api/tasks/",
            {**TASK, "parameters": {"max-num-seqs": list(range(1, 102)), "max-model-len": list(range(1, 102))}},
            LET_THROUGH,
            id="task-a-grid-search-too-big",
        ),
        pytest.param("/api/presets/", {"name": "", "parameters": {"max-num-seqs": [1]}}, CAUGHT, id="preset-no-name"),
        pytest.param(
            "/api/presets/",
            {"name": "P", "parameters": {"no-such-flag": [None]}},
            CAUGHT,
            id="preset-a-refused-value-of-a-flag-no-engine-has",
        ),
        pytest.param(
            "/api/tasks/", {**TASK, "parameters": {"max-num-seqs": [1]}, "gpus": 0}, CAUGHT, id="task-no-gpus"
        ),
    ],
)
def test_only_refusals_no_schema_foresees_are_let_through_for_valid_data(api, path, body, let_through):
    """The exception to positive_data_acceptance stays narrow: another 400 is still a failure."""
    response = api.post(path, body, format="json")
    assert response.status_code == 400, response.json()
    assert cannot_be_foreseen(response) is let_through, response.json()


WHITESPACE = [character for character in map(chr, range(0x3001)) if character.isspace()]


@pytest.mark.parametrize(
    ("path", "body", "component"),
    [
        ("/api/presets/", {"parameters": {"x": [1]}}, "PresetRequest"),
        ("/api/tasks/", {**TASK, "parameters": {"x": [1]}}, "TaskRequest"),
    ],
)
@pytest.mark.parametrize("name", [*WHITESPACE, "\ufeff"], ids=lambda name: f"U+{ord(name):04X}")
def test_the_schema_and_the_api_trim_the_same_spaces_from_a_name(api, path, body, component, name):
    """A name of only what trimming removes is refused, and the schema says so in every regex
    engine (schemathesis validates with jsonschema_rs, whose \\s lacks U+0085); U+FEFF is kept."""
    name_schema = schema.raw_schema["components"]["schemas"][component]["properties"]["name"]
    response = api.post(path, {**body, "name": name}, format="json")
    assert response.status_code == (201 if name == "\ufeff" else 400), response.json()
    assert jsonschema_rs.validator_for(name_schema).is_valid(name) is (response.status_code == 201)


@pytest.mark.parametrize("url", ["/api/presets/{id}/export/", "/api/presets/export/"])
def test_an_empty_history_flag_is_refused_as_the_schema_says(api, user, url):
    """The schema says a boolean; ``?history=`` is neither, so it is refused, not read as false."""
    preset = make_preset(created_by=user)
    response = api.get(url.format(id=preset.pk) + "?history=")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "history", "message": "expected true or false, got ''"}]


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("plan/?page_size=", "page_size"),
        ("plan/?page=", "page"),
        ("plan/?page=1&page=2", "page"),
        ("experiments/?status=", "status"),
        ("experiments/?sort=number&sort=score", "sort"),
    ],
)
def test_a_query_value_that_is_empty_or_given_twice_is_refused_as_the_schema_says(api, query, path):
    """The schema says one value of the parameter's type: neither read as absent nor the last one taken."""
    task = make_task()
    response = api.get(f"/api/tasks/{task.pk}/{query}")
    assert response.status_code == 400, response.json()
    assert [error["path"] for error in response.json()["errors"]] == [path]


@pytest.mark.parametrize("name", ["runtime", "is_system"])
def test_an_empty_preset_filter_lists_every_preset_as_the_schema_says(api, user, name):
    """django-filter reads ``?runtime=`` as no filter; the schema names the empty value, as the tasks list's does."""
    make_preset(created_by=user, runtime="vllm")
    parameters = schema.raw_schema["paths"]["/api/presets/"]["get"]["parameters"]
    assert "" in next(parameter for parameter in parameters if parameter["name"] == name)["schema"]["enum"]
    assert api.get(f"/api/presets/?{name}=").json() == api.get("/api/presets/").json()
