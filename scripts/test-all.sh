#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine: installs what the tests need,
# checks types, lint and the rule pack, runs every test, and ends with one "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

echo "== build (dist/, what bin/kubevigil.js runs) and typecheck (tests, benchmarks, scripts too)"
npm run build --silent
npx tsc -p .
npx tsc -p console
echo "== lint (eslint, and the layers: dependency-cruiser)"
npm run lint --silent
echo "== rules lint"
node bin/kubevigil.js rules lint
echo "== rules test"
rules_out=$(node bin/kubevigil.js rules test) || { echo "$rules_out"; echo "rule tests failed"; exit 1; }
echo "$rules_out" | tail -n 1 | sed 's/^/rule tests: /'

echo "== Prometheus and Alertmanager from Debian's packages (the real webhook sender in tests)"
bash scripts/prometheus.sh install

echo "== helm, built from source from the Go module proxy (lints and renders charts/kubevigil in tests; cached after the first build)"
bash scripts/helm.sh install

echo "== kube-apiserver, kubectl and etcd, built from source from the Go module proxy (test/kube-apiserver-e2e.test.ts runs a real apiserver whose audit webhook posts to kubevigil; ≈12 min the first time on 2 cores, cached after)"
kapi_start=$SECONDS
KUBEVIGIL_KUBE_APISERVER_BIN="$(bash scripts/kube-apiserver.sh build)"
export KUBEVIGIL_KUBE_APISERVER_BIN
echo "kube-apiserver build: $((SECONDS - kapi_start))s (binaries in $KUBEVIGIL_KUBE_APISERVER_BIN)"

echo "== Chromium from Debian's packages (the console's browser tests drive it with playwright-core)"
bash scripts/chromium.sh install

echo "== vitest (with a real Kafka broker and Redis server, started and stopped by scripts/with-services.sh)"
mkdir -p .cache
rm -f .cache/vitest.json
status=0
bash scripts/with-services.sh npx vitest run --reporter=default --reporter=json --outputFile=.cache/vitest.json || status=$?
if [ ! -f .cache/vitest.json ]; then echo "vitest did not run (could Kafka or Redis not start? see above)"; exit 1; fi

node -e '
  const r = JSON.parse(require("fs").readFileSync(".cache/vitest.json", "utf8"));
  const rules = process.argv[1].match(/(\d+) passed, (\d+) failed/) || [0, 0, 0];
  const passed = r.numPassedTests + Number(rules[1]);
  const failed = r.numFailedTests + Number(rules[2]);
  const skipped = r.numPendingTests + r.numTodoTests;
  if (r.numTotalTests === 0) { console.error("no test ran"); process.exit(1); }
  console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$(echo "$rules_out" | tail -n 1)"
exit $status
