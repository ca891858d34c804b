#!/usr/bin/env bash
# The schemathesis CLI against gunicorn, as an outside client meets the API: every phase (examples,
# coverage, fuzzing, stateful), --checks all, 100 examples per operation, deterministic. The suite's
# tests/test_schema_fuzz.py runs the same in-process; this run adds real sessions, real
# transactions and two worker processes. The checks are narrowed exactly as the suite's are
# (bench/schema_hooks.py reuses its CANNOT_SAY and CANNOT_FORESEE), so a failure here is drift.
#
#     bench/schema_fuzz.sh [extra schemathesis options, e.g. --max-examples 25]
#
# Builds a fresh SQLite database in a temporary folder with one user and an API token, serves it on
# a free loopback port with the API throttles off (the fuzzer sends thousands of requests a minute),
# and exits with schemathesis' status.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
RUN=$(mktemp -d)
export DATABASE_URL="sqlite:///$RUN/db.sqlite3" AUTOTUNER_DATA_DIR="$RUN"
export AUTOTUNER_API_RATE_USER=off AUTOTUNER_API_RATE_ANON=off
"$PY" manage.py migrate -v0
TOKEN=$("$PY" manage.py shell -v0 -c "
from django.contrib.auth import get_user_model
from accounts.models import ApiToken
user = get_user_model().objects.create_user('fuzz', password='fuzz-password-123')
print(ApiToken.objects.create_token(user=user, name='schemathesis')[1])
" | tail -1)
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

"$PY" -m gunicorn autotuner.wsgi --workers 2 --bind "127.0.0.1:$PORT" --no-control-socket >"$RUN/gunicorn.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$RUN"' EXIT
for _ in $(seq 50); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
    sleep 0.2
done

status=0
SCHEMATHESIS_HOOKS=bench.schema_hooks .venv/bin/schemathesis run "http://127.0.0.1:$PORT/api/schema/" \
    -H "Authorization: Token $TOKEN" \
    --checks all --exclude-checks positive_data_acceptance,use_after_free \
    --phases examples,coverage,fuzzing,stateful --max-examples 100 --generation-deterministic \
    "$@" || status=$?
if grep -q Traceback "$RUN/gunicorn.log"; then
    echo "gunicorn logged a traceback:" >&2
    grep -A20 Traceback "$RUN/gunicorn.log" >&2
    status=1
fi
exit "$status"
