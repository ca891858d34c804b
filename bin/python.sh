# Sourced by bin/start and bin/test: finds a Python >= 3.12 and keeps the
# project's virtualenv (.venv) in step with the pinned requirements.
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
