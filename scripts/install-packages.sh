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
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing packages: ${need[*]} (run as root to install them)" >&2; exit 1; fi
  echo "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
