#!/usr/bin/env bash
# The main job: build and lint, start five sandbox hosts and metad for them, create the example ZooKeeper ensemble with
# agents (the example plus `agent: true`) on three of them through shoal (embedded registry), show its status and that
# it elected a leader, scale it to five members by dynamic reconfiguration (the joiners added as voters one at a time,
# the existing members' new member list delivered by their own agents, no member restarted), destroy it, stop metad and the sandbox. Needs root, and Debian's openssh-server and zookeeper (installed when
# missing). Everything lives under .shoal/demo/; a run interrupted earlier is cleaned up first, so it can always be run again.
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
  if [ -f "$DEMO/metad.pid" ]; then kill "$(cat "$DEMO/metad.pid")" 2>/dev/null || true; rm -f "$DEMO/metad.pid"; fi
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

step "five sandbox hosts: each an sshd in its own network namespace (198.18.x.1-5) with its own /srv"
shoal sandbox up --hosts 5 --dir "$SANDBOX"

step "metad where the hosts reach it (the machine's address on their bridge), in the background"
echo "\$ shoal sandbox metad --dir $SANDBOX --state $STATE &"
node bin/run.js sandbox metad --dir "$SANDBOX" --state "$STATE" 2> "$DEMO/metad.log" &
echo $! > "$DEMO/metad.pid"
for _ in $(seq 1 100); do grep -q 'reach it at' "$DEMO/metad.log" 2>/dev/null && break; sleep 0.1; done
cat "$DEMO/metad.log"
METAD=$(sed -n 's/^sandbox hosts reach it at \(http:[^:]*:[0-9]*\).*/\1/p' "$DEMO/metad.log")
if [ -z "$METAD" ]; then echo "metad did not start" >&2; exit 1; fi

step "the ZooKeeper example with agents: specs/zookeeper.yaml plus one line, agent: true"
mkdir -p "$DEMO/specs"
cp -r specs/zookeeper specs/zookeeper.yaml "$DEMO/specs/"
echo "agent: true" >> "$DEMO/specs/zookeeper.yaml"
shoal lint "$DEMO/specs/zookeeper.yaml"

step "a password for ZooKeeper's super user (reconfiguration needs it): a secret parameter, given from a file"
(umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$DEMO/super_password")

step "create it on three hosts: each node gets its agent, whose first pass places its files"
shoal create "$DEMO/specs/zookeeper.yaml" --hosts "$SANDBOX/hosts.yaml" --state "$STATE" --metad "$METAD" --set-file "super_password=$DEMO/super_password"

step "status: every node active, its health checked now, its agent in sync"
shoal status zk-main --state "$STATE"

# Ask every member for its role (the spec's srvr action) until one leads and the rest follow.
ensemble() {
  local followers=$1
  local expected
  expected="$(printf 'follower %.0s' $(seq 1 "$followers"))leader "
  # create waits until each member answers (ruok); the election may take a few more seconds after the last one starts.
  for attempt in $(seq 1 20); do
    echo "\$ shoal run zk-main srvr --state $STATE"
    srvr=$(node bin/run.js run zk-main srvr --state "$STATE")
    grep -E ' \| (Mode|Zxid|Node count):|not currently serving' <<<"$srvr" || true
    modes=$(sed -n 's/^.* | Mode: //p' <<<"$srvr" | sort | tr '\n' ' ')
    if [ "$modes" = "$expected" ]; then echo "one leader, $followers followers"; return 0; fi
    if [ "$attempt" = 20 ]; then
      echo "expected one leader and $followers followers, got: ${modes:-no modes}" >&2
      return 1
    fi
    echo "(not settled yet; asking again in 3 s)"
    sleep 3
  done
}

step "ask every member for its role in the ensemble: one leader, two followers"
ensemble 2

zk_pids() { for i in 1 2 3; do cat "$SANDBOX"/hosts/*/srv/shoal/zk-main/zk-main-zk-$i/run/zookeeper.pid; done | tr '\n' ' '; }
pids_before=$(zk_pids)

step "scale to five: the joiners start, follow the leader, and are added as voters (reconfig -add) one at a time"
shoal scale zk-main --role zk --count 5 --state "$STATE"

step "no member restarted (same ZooKeeper pids); each first member's agent delivered the new member list itself"
echo "pids of members 1-3 before: $pids_before, after: $(zk_pids)"
[ "$(zk_pids)" = "$pids_before" ]
for i in 1 2 3; do
  echo "zk-main-zk-$i: $(grep -h 'changed .*bin/common.sh' "$SANDBOX"/hosts/*/srv/shoal/zk-main/zk-main-zk-$i/.shoal/agent.log | tail -1)"
done
grep -q 'changed .*bin/common.sh' "$SANDBOX"/hosts/*/srv/shoal/zk-main/zk-main-zk-1/.shoal/agent.log

step "the membership every member runs with: five voters"
echo "\$ shoal run zk-main members --state $STATE"
members=$(node bin/run.js run zk-main members --state "$STATE")
grep 'zk-main-zk-1 |' <<<"$members"
for i in 1 2 3 4 5; do
  [ "$(grep -c "^zk-main-zk-$i | server\." <<<"$members")" = 5 ] || { echo "zk-main-zk-$i does not run with five voters" >&2; exit 1; }
done

step "the grown ensemble: one leader, four followers"
ensemble 4

step "destroy it: agents and members stopped, homes removed, registry cleared"
shoal destroy zk-main --yes --state "$STATE"
shoal get --state "$STATE"

step "stop metad and the sandbox"
kill "$(cat "$DEMO/metad.pid")" && rm -f "$DEMO/metad.pid"
shoal sandbox down --dir "$SANDBOX"
rm -rf "$DEMO"
