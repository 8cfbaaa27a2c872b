#!/usr/bin/env bash
# Runs the Eclipse Paho interoperability suites (client_test5.py, MQTT 5, and
# client_test.py, 3.1.1) against `node dist/cli/main.js --mqtt5` on loopback.
# Builds nothing: run `npm run build` first.
#   bench/paho-interop.sh PATH/TO/paho.mqtt.testing [extra broker flags...]
# Each test runs in its own python3 process under a timeout (some, e.g.
# test_flow_control2, spin forever on a broker that lacks the feature).
# Per-test logs stay in the directory printed at the end.
set -euo pipefail
paho=${1:?usage: $0 PATH/TO/paho.mqtt.testing [broker flags...]}; shift
[ -f "$paho/interoperability/client_test5.py" ] && paho=$paho/interoperability
[ -f "$paho/client_test5.py" ] || { echo "no client_test5.py in $paho" >&2; exit 2; }
cd "$(dirname "$0")/.."
logs=$(mktemp -d -t paho-interop.XXXXXX)
broker=
trap '[ -z "$broker" ] || { kill $broker 2>/dev/null; wait $broker 2>/dev/null || true; }' EXIT
trap 'exit 130' INT TERM

# run_suite SUITE [broker flags...]: sets $result to passed/total, names failures
# on stderr. A fresh broker per suite: what the MQTT 5 suite's flow-control
# tests leave behind upsets the 3.1.1 one.
run_suite() {
  local suite=$1 t pass=0 total=0 port; shift
  port=$(node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  node dist/cli/main.js --mqtt5 --host 127.0.0.1 --port "$port" --log-level warn "$@" >"$logs/broker.${suite%.py}.log" 2>&1 &
  broker=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
  kill -0 $broker 2>/dev/null || { cat "$logs/broker.${suite%.py}.log" >&2; exit 1; }
  for t in $(grep -oP '^    def \Ktest\w+' "$paho/$suite"); do
    total=$((total + 1))
    # --hostname, not -h: the suites test `o in ("--help")`, a substring match;
    # unittest.main gets its own argv, as the suites' leftover options confuse it
    if (cd "$paho" && timeout 45 python3 -W ignore -c '
import sys, unittest, runpy
suite, port, test = sys.argv[1:4]
main = unittest.main
unittest.main = lambda *a, **k: main(module="__main__", argv=["x", "-v", "Test." + test])
sys.argv = [suite, "--hostname", "127.0.0.1", "--port", port]
runpy.run_path(suite, run_name="__main__")' "$suite" "$port" "$t") >"$logs/${suite%.py}.$t.log" 2>&1
    then pass=$((pass + 1)); else echo "  $suite $t: failed (exit $?)" >&2; fi
  done
  kill $broker 2>/dev/null || true; wait $broker 2>/dev/null || true; broker=
  result=$pass/$total
}
run_suite client_test5.py "$@"; v5=$result
run_suite client_test.py "$@"; v311=$result
echo "MQTT 5: $v5, 3.1.1: $v311   (logs: $logs)"
