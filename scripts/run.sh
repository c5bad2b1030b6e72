#!/usr/bin/env bash
# Set up, start the database (the embedded cluster when GEOGRID_DATABASE_URL is unset),
# load the Yulin demo if the database is empty, and serve on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
if [ -z "${GEOGRID_DATABASE_URL:-}" ]; then geogrid db up; fi
geogrid db migrate
geogrid demo load --if-empty
exec geogrid serve --host "${GEOGRID_HOST:-127.0.0.1}" --port "${GEOGRID_PORT:-8000}"
