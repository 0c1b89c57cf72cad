#!/usr/bin/env bash
# The Python package's tests (python/tests, pytest) against a real `suneung serve`: the
# package installed as a user installs it (pip install ./python), with pytest and numpy,
# in a virtual environment of its own under .build/ (pip caches the wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/python-tests
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check pytest numpy openapi-spec-validator ./python
SUNEUNG_BINARY="${SUNEUNG_BINARY:-$PWD/.build/release/suneung}" "$venv/bin/python" -m pytest -q -rs python/tests
