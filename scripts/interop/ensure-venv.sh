#!/usr/bin/env bash
# Creates (or reuses) the virtual environment for Kestrel's interop tests and prints its
# python's path on the last line. Location: $KESTREL_INTEROP_VENV, else
# ${TMPDIR:-/tmp}/kestrel-interop-venv. Exit code 3 means PyPI cannot be reached.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${KESTREL_INTEROP_VENV:-${TMPDIR:-/tmp}/kestrel-interop-venv}"
stamp="$venv/.kestrel-requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$here/requirements.txt"; then
    echo "$venv/bin/python"
    exit 0
fi
if ! python3 -c "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/pip/', timeout=20)" >/dev/null 2>&1; then
    echo "ensure-venv: PyPI cannot be reached" >&2
    exit 3
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
cp "$here/requirements.txt" "$stamp"
echo "$venv/bin/python"
