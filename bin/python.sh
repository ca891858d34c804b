# Sourced by bin/start, bin/serve and bin/test: finds a Python >= 3.12, keeps the
# project's virtualenv (.venv) in step with the pinned requirements, and runs the servers.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"

# pyenv shims honour .python-version; plain python3.12/3.13 cover machines without pyenv.
find_python() {
    local candidate
    for candidate in "${AUTOTUNER_PYTHON:-}" python3 python3.13 python3.12 python; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if (cd "$ROOT" && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))') 2>/dev/null; then
            (cd "$ROOT" && "$candidate" -c 'import sys; print(sys.executable)')
            return 0
        fi
    done
    echo "autotuner needs Python 3.12 or newer, and none was found." >&2
    echo "Install one (e.g. 'pyenv install 3.12', or your system's python3.12 package)," >&2
    echo "or point AUTOTUNER_PYTHON at its executable." >&2
    return 1
}

# Installs the given requirement files into .venv, only when they changed since the last install.
ensure_venv() {
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
        local python
        python=$(find_python)
        rm -rf "$VENV"
        echo "Creating virtualenv .venv with $python"
        "$python" -m venv "$VENV"
    fi
    local stamp="$VENV/.installed" wanted
    wanted=$(cd "$ROOT" && cat "$@" | sha256sum | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
        echo "Installing $* into .venv"
        (cd "$ROOT" && "$VENV/bin/python" -m pip install -q --disable-pip-version-check $(printf -- '-r %s ' "$@") 2>&1 \
            | { grep -v "is ignored" || true; })
        echo "$wanted" > "$stamp"
    fi
}

# Runs the task worker beside the web server given as arguments (bin/start, bin/serve) until either
# ends. SIGTERM, Ctrl+C or either one ending stops the other and waits for both, so nothing started
# here outlives the script. The server runs in the background: a signal that arrives while bash
# waits for a foreground command is handled only once that command exits, which it never does.
WEB="" WORKER=""
stop_web_and_worker() {
    [ -n "$WEB" ] && kill -TERM "$WEB" 2>/dev/null || true
    [ -n "$WORKER" ] && kill -TERM "$WORKER" 2>/dev/null || true
    wait 2>/dev/null || true
}
run_with_worker() {
    trap stop_web_and_worker EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    "$VENV/bin/python" manage.py worker --no-startup-delay &
    WORKER=$!
    "$@" &
    WEB=$!
    local status=0
    wait -n "$WEB" "$WORKER" || status=$?
    exit "$status"
}
