#!/usr/bin/env bash
# The whole test suite from a clean Debian machine (as root): system packages the tests drive, npm deps, build, lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-packages.sh

npm ci --no-audit --no-fund
npm run build
npm run lint
npm run typecheck
npm test
