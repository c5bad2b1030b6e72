#!/usr/bin/env bash
# Set up and run the whole test suite against a real PostGIS.
# Uses GEOGRID_TEST_ADMIN_URL, else the server on 127.0.0.1:5432 when it answers,
# else the project's embedded cluster. Each run creates and drops its own databases.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
if [ -z "${GEOGRID_TEST_ADMIN_URL:-}" ]; then
  if .venv/bin/python -c 'import psycopg; psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()' 2>/dev/null; then
    export GEOGRID_TEST_ADMIN_URL="postgresql://postgres@127.0.0.1:5432/postgres"
  else
    geogrid db up
    export GEOGRID_TEST_ADMIN_URL="postgresql://postgres@127.0.0.1:${GEOGRID_PG_PORT:-55432}/postgres"
  fi
fi
mkdir -p artifacts
# static checks first: style, formatting, the import rules of the layers, types, the page's JS
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
.venv/bin/mypy
if [ -f package.json ]; then
  [ -d node_modules ] || npm ci --no-audit --no-fund --silent
  npx --no-install eslint api/static tests/js
  node --test tests/js/
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${GEOGRID_TEST_WORKERS:-2}" "$@"
