#!/usr/bin/env bash
# The Debian packages shoal's tests and main job drive, installed when missing (needs root only when something is).
set -euo pipefail

need=()
[ -x /usr/bin/etcd ] || need+=(etcd-server)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v git >/dev/null || need+=(git)
# The sandbox gives each host a network namespace (ip netns, veth, bridge) and enters it with nsenter (util-linux).
[ -x /usr/sbin/ip ] || need+=(iproute2)
# The real services the end-to-end tests and the main job run through shoal. zookeeper brings java (default-jre)
# as a dependency; redis-server brings redis-cli (redis-tools). The example scripts use python3, bash, timeout and cmp.
[ -f /usr/share/java/zookeeper.jar ] && [ -x /usr/share/zookeeper/bin/zkCli.sh ] && command -v java >/dev/null || need+=(zookeeper)
[ -x /usr/sbin/haproxy ] || need+=(haproxy)
[ -x /usr/bin/redis-server ] && [ -x /usr/bin/redis-cli ] || need+=(redis-server)
[ -x /usr/bin/python3 ] || need+=(python3)
[ -x /usr/sbin/mariadbd ] && [ -x /usr/bin/mariadb-install-db ] && [ -x /usr/bin/mariadb ] || need+=(mariadb-server mariadb-client)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing packages: ${need[*]} (run as root to install them)" >&2; exit 1; fi
  echo "installing Debian packages: ${need[*]}"
  apt-get update -qq
  # A freshly installed mariadb-server is started where an init system lets it; shoal's tests run their own servers,
  # so nothing may start here (invoke-rc.d asks policy-rc.d; 101 = action forbidden).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
