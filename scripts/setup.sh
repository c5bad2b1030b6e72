#!/usr/bin/env bash
# Install what geogrid needs on a fresh Debian/Ubuntu machine (as root or with sudo):
# PostgreSQL + PostGIS and Chromium from Debian, then a virtualenv with the package.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need=()
dpkg -s postgresql-15-postgis-3 >/dev/null 2>&1 || need+=(postgresql-15-postgis-3)
if [ "${GEOGRID_WITH_BROWSER:-1}" = "1" ]; then
  dpkg -s chromium >/dev/null 2>&1 || need+=(chromium)
  dpkg -s gdal-bin >/dev/null 2>&1 || need+=(gdal-bin)
  dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || need+=(fonts-wqy-microhei)
  # pdftoppm/pdftotext: the PDF exports are checked as rendered pages in the tests
  dpkg -s poppler-utils >/dev/null 2>&1 || need+=(poppler-utils)
fi
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv python3-pip)
# the web page's lint and unit tests (package.json: eslint, node --test)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  # installing PostgreSQL may stop or start the distribution's cluster; leave it running
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql/15/main ]; then
    pg_ctlcluster --skip-systemctl-redirect 15 main start >/dev/null 2>&1 || true
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.geogrid-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev,bench]'
  touch "$stamp"
fi
echo "setup: ready (.venv)"
