#!/usr/bin/env bash
# Fresh Debian machine -> running proxy: install what is missing, build, run on the default config.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/deps.sh
packaging/build.sh >/dev/null
exec build/portier --config "${PORTIER_CONFIG:-rules/portier.json}"
