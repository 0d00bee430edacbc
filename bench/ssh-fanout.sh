#!/bin/sh
# Yardstick of the lifecycle benchmarks: the same commands shoal runs, done by plain parallel OpenSSH clients.
#
# usage: ssh-fanout.sh KEY KNOWN_HOSTS PORT CONTROL_DIR < PHASES
#   PHASES: one line per phase, `ADDRESSES<TAB>COMMAND` (addresses comma-separated). Phases run one after the other;
#   inside a phase every address gets its own ssh client, all at once. Exits 1 when any command failed.
#   CONTROL_DIR empty: a new connection per client. Non-empty: one master connection per host (ControlMaster, kept 60 s)
#   reused by later phases, as shoal reuses one connection per host; close them with `ssh -O exit` afterwards.
set -u
key=$1 known=$2 port=$3 control=$4
set -- -i "$key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$known" -o LogLevel=ERROR
if [ -n "$control" ]; then
  set -- "$@" -o ControlMaster=auto -o ControlPath="$control/%h" -o ControlPersist=60
fi
status=0
tab=$(printf '\t')
while IFS="$tab" read -r addresses command; do
  pids=""
  for address in $(echo "$addresses" | tr ',' ' '); do
    # No terminal output: a persisted master would otherwise hold the caller's pipes open.
    ssh "$@" "root@$address" "$command" </dev/null >/dev/null 2>>"${FANOUT_ERRORS:-/dev/null}" &
    pids="$pids $!"
  done
  for pid in $pids; do
    wait "$pid" || status=1
  done
done
exit $status
