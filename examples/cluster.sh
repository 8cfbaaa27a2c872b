#!/usr/bin/env bash
# Three broker nodes sharing one Redis, all on 127.0.0.1: MQTT on 1883, 1884
# and 1885 (BASE_PORT changes the first), Redis on 6379 (REDIS_PORT).
# Uses the redis-server already answering there, or starts one (append-only,
# in a temporary directory). Ctrl-C or SIGTERM stops everything it started,
# and so does any of its processes ending.
#
#   examples/cluster.sh
#   mosquitto_sub -p 1885 -i bob -t none -v &     # bob on node 3
#   mosquitto_pub -p 1883 -t p2p/bob/chat -m hi   # from node 1
set -euo pipefail
cd "$(dirname "$0")/.."

redis_port=${REDIS_PORT:-6379}
base_port=${BASE_PORT:-1883}
pids=()
stop () {
  trap - EXIT INT TERM
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'stop; exit 0' INT TERM

# build once, before the nodes start: three `npm start` would each rebuild dist/ at the same moment
if [ ! -f dist/cli/main.js ] || [ -n "$(find src -newer dist/cli/main.js -print -quit)" ]; then
  npm run build --silent
fi

if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes --dir "$(mktemp -d)" >/dev/null &
  pids+=($!)
  for _ in $(seq 1 50); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

for i in 0 1 2; do
  node dist/cli/main.js --port $((base_port + i)) --redis "redis://127.0.0.1:$redis_port" &
  pids+=($!)
done

# a cluster missing a node is not the one asked for: when any process ends, stop them all
set +e
wait -n
status=$?
echo "cluster.sh: a process ended (status $status); stopping the others" >&2
exit "$status"
