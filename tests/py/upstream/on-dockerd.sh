#!/bin/sh
# The Berth suite's selection of docker-py's integration suite, run against Debian's
# dockerd (`docker.io`) instead: it shows the selection is fair (dockerd passes every
# selected test; selection.txt's `known` lines are expected to pass there too).
#
#   sudo sh tests/py/upstream/on-dockerd.sh [OUT_DIR]
#
# Needs root, docker.io, and the suite `cargo xtask docker-py-suite` prepares (or
# BERTH_DOCKER_PY). dockerd and a private containerd run in a scratch network
# namespace with their own data directories; all of it is removed on exit.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
SUITE=${BERTH_DOCKER_PY:-$ROOT/target/tools/docker-py}
OUT=${1:-$(mktemp -d /tmp/berth-dpy-dockerd-out.XXXXXX)}
W=$(mktemp -d /tmp/berth-dpy-dockerd.XXXXXX)
NS=berth-dpy-dd-$$
IN="nsenter --net=/run/netns/$NS"

cleanup() {
  [ -f "$W/dockerd.pid" ] && kill "$(cat "$W/dockerd.pid")" 2>/dev/null || true
  for _ in $(seq 30); do [ -e "$W/docker.sock" ] || break; sleep 1; done
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns delete "$NS" 2>/dev/null || true
  findmnt -rn -o TARGET | grep "^$W/" | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
cat > "$W/containerd.toml" <<TOML
version = 2
root = "$W/containerd/root"
state = "$W/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/containerd.sock"
[ttrpc]
  address = "$W/containerd.sock.ttrpc"
[debug]
  address = "$W/containerd-debug.sock"
TOML
$IN containerd --config "$W/containerd.toml" > "$W/containerd.log" 2>&1 &
for _ in $(seq 30); do [ -S "$W/containerd.sock" ] && break; sleep 1; done
$IN dockerd --containerd "$W/containerd.sock" --data-root "$W/data" --exec-root "$W/exec" \
  --pidfile "$W/dockerd.pid" -H "unix://$W/docker.sock" \
  --iptables=false --ip-masq=false > "$W/dockerd.log" 2>&1 &
export DOCKER_HOST="unix://$W/docker.sock"
for _ in $(seq 60); do docker version > /dev/null 2>&1 && break; sleep 1; done
docker version --format 'dockerd {{.Server.Version}}, API {{.Server.APIVersion}}'
"$SUITE/venv/bin/python" "$HERE/run_suite.py" --suite "$SUITE/suite" --out "$OUT" --reference
