#!/usr/bin/env bash
# The main job: build and lint, start three sandbox hosts, create the example ZooKeeper ensemble on them through shoal
# (embedded registry), show its status and that it elected a leader, destroy it, stop the sandbox. Needs root, and
# Debian's openssh-server and zookeeper (installed when missing). Everything lives under .shoal/demo/;
# a run interrupted earlier is cleaned up first, so the script can always be run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO=.shoal/demo
SANDBOX=$DEMO/sandbox
STATE=$DEMO/state

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
shoal() { echo "\$ shoal $*"; node bin/run.js "$@"; }

# Stopping the sandbox stops every process its hosts started (sshd, ZooKeeper); the registry goes with the state dir.
# When that fails, the directory stays: it records the processes a later `shoal sandbox down` must stop.
cleanup() {
  if [ -f "$SANDBOX/sandbox.json" ]; then node bin/run.js sandbox down --dir "$SANDBOX" >/dev/null || return 1; fi
  rm -rf "$DEMO"
}
trap 'status=$?; if [ $status -ne 0 ]; then echo "demo failed (exit $status); cleaning up" >&2; cleanup || echo "cleanup failed: run bash scripts/demo.sh again, or node bin/run.js sandbox down --dir $SANDBOX" >&2; fi' EXIT

step "install and build"
bash scripts/install-packages.sh
# npm keeps node_modules/.package-lock.json: when it is newer than package-lock.json the install is current.
if [ ! node_modules/.package-lock.json -nt package-lock.json ]; then npm ci --no-audit --no-fund; fi
npm run build

step "lint the example specs"
shoal lint specs/

if [ -e "$DEMO" ]; then
  step "clean up what an interrupted earlier run left"
  cleanup
fi

step "three sandbox hosts: each an sshd in its own network namespace (198.18.x.1-3) with its own /srv"
shoal sandbox up --hosts 3 --dir "$SANDBOX"

step "create the ZooKeeper ensemble (specs/zookeeper.yaml) on them"
shoal create specs/zookeeper.yaml --hosts "$SANDBOX/hosts.yaml" --state "$STATE"

step "status: every node active, its health checked now"
shoal status zk-main --state "$STATE"

step "ask every member for its role in the ensemble (the spec's srvr action): one leader, two followers"
# create waits until each member answers (ruok); the election may take a few more seconds after the last one starts.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  echo "\$ shoal run zk-main srvr --state $STATE"
  srvr=$(node bin/run.js run zk-main srvr --state "$STATE")
  grep -E ' \| (Mode|Zxid|Node count):|not currently serving' <<<"$srvr" || true
  modes=$(sed -n 's/^.* | Mode: //p' <<<"$srvr" | sort | tr '\n' ' ')
  if [ "$modes" = "follower follower leader " ]; then break; fi
  if [ "$attempt" = 10 ]; then
    echo "expected one leader and two followers, got: ${modes:-no modes}" >&2
    exit 1
  fi
  echo "(not settled yet; asking again in 3 s)"
  sleep 3
done
echo "one leader, two followers"

step "destroy it: members stopped, homes removed, registry cleared"
shoal destroy zk-main --yes --state "$STATE"
shoal get --state "$STATE"

step "stop the sandbox"
shoal sandbox down --dir "$SANDBOX"
rm -rf "$DEMO"
