#!/usr/bin/env bash
# Static security checks of infra/terraform with checkov, in a virtualenv of its own (.venv-checkov):
# checkov pins many packages that would clash with the project's lock. Exits non-zero on any failed check;
# the accepted exceptions are written next to their resources as `#checkov:skip=CKV_...:reason`.
#
#   bash infra/checkov.sh            (first run installs checkov, ~30 s; later runs ~1 min)
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION="3.3.30"
VENV="${CHECKOV_VENV:-.venv-checkov}"

if ! "$VENV/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
    echo "checkov: installing checkov==$CHECKOV_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" || true
    "$VENV/bin/checkov" --version >/dev/null
fi

# No telemetry, no download of external checks or modules: the run must work offline and be repeatable.
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
exec "$VENV/bin/checkov" -d infra/terraform --quiet --compact --framework terraform \
    --skip-download --download-external-modules false "$@"
