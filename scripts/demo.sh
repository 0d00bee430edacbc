#!/usr/bin/env bash
# The main job on the embedded defaults (state in .shoal/): install, lint the examples, plan and register the
# ZooKeeper example, link Kafka to it, scale ZooKeeper out, show what every member sees, then remove both clusters.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
shoal() { echo "\$ shoal $*"; node bin/run.js "$@"; }
HOSTS=specs/hosts.local.yaml

step "install and build"
npm ci --no-audit --no-fund
npm run build

step "lint the example specs and the inventory"
shoal lint specs/

destroy() { # cluster spec
  node bin/run.js plan "$2" --hosts "$HOSTS" --destroy --out ".shoal-$1.plan" >/dev/null
  shoal apply ".shoal-$1.plan" --registry-only
  rm -f ".shoal-$1.plan"
}

# A run interrupted earlier may have left the demo clusters registered: start clean.
node bin/run.js get kafka-main >/dev/null 2>&1 && destroy kafka-main specs/kafka.yaml
node bin/run.js get zk-main >/dev/null 2>&1 && destroy zk-main specs/zookeeper.yaml

step "plan the ZooKeeper ensemble (nothing is written)"
shoal plan specs/zookeeper.yaml --hosts "$HOSTS" --out .shoal-zk.plan

step "register it (the SSH executor that runs the scripts on hosts comes next)"
shoal apply .shoal-zk.plan --registry-only
rm -f .shoal-zk.plan

step "planning again changes nothing (exit 0 with --detailed-exitcode)"
shoal plan specs/zookeeper.yaml --hosts "$HOSTS" --detailed-exitcode >/dev/null && echo "no changes"

step "Kafka brokers linked to zk-main: zookeeper.connect comes from the link"
shoal apply specs/kafka.yaml --hosts "$HOSTS" --registry-only >/dev/null
shoal get kafka-main files/kafka-main-broker-1 | grep zookeeper.connect

step "scale ZooKeeper out by 2: new sids 4 and 5, every member's zoo.cfg lists all five"
shoal scale zk-main --role zk --add 2 --hosts "$HOSTS" --registry-only >/dev/null
shoal get zk-main hosts/zk | grep -E '/(sid|ip|bootstrap) ='
shoal get zk-main files/zk-main-zk-1 | grep '^    server\.'

step "remove both clusters from the registry"
destroy kafka-main specs/kafka.yaml
destroy zk-main specs/zookeeper.yaml
shoal get
