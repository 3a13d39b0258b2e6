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
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
# Ask the index pip is configured for (its own settings, a mirror included) rather than a fixed host.
if ! "$venv/bin/python" -m pip index versions pip --disable-pip-version-check --timeout 20 --retries 0 >/dev/null 2>&1; then
    echo "ensure-venv: the Python package index cannot be reached" >&2
    exit 3
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
cp "$here/requirements.txt" "$stamp"
echo "$venv/bin/python"
