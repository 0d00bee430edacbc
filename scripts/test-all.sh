#!/usr/bin/env bash
# The whole test suite from a clean Debian machine (as root): system packages the tests drive, npm deps, build, lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/etcd ] || need+=(etcd-server)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v git >/dev/null || need+=(git)
# The real services the end-to-end tests run through shoal (test/e2e-*.test.ts). zookeeper brings java (default-jre)
# as a dependency; redis-server brings redis-cli (redis-tools). The scripts use python3, bash, timeout and cmp.
[ -f /usr/share/java/zookeeper.jar ] && [ -x /usr/share/zookeeper/bin/zkCli.sh ] && command -v java >/dev/null || need+=(zookeeper)
[ -x /usr/sbin/haproxy ] || need+=(haproxy)
[ -x /usr/bin/redis-server ] && [ -x /usr/bin/redis-cli ] || need+=(redis-server)
[ -x /usr/bin/python3 ] || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing packages: ${need[*]} (run as root to install them)" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
npm run build
npm run lint
npm run typecheck
npm test
