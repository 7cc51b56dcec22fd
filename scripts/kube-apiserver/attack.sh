#!/usr/bin/env bash
# Seed the web/ledger scenario (scenario.yaml) as admin, then replay a service-account
# credential-abuse chain with kubectl against the real kube-apiserver, and
# check every step against the expected RBAC / admission outcome.
#
#   eval "$(up.sh)"; attack.sh
# needs: KUBECONFIG (admin, from up.sh), KAPI_SERVER, KAPI_CA, KAPI_STATE;
#        KAPI_KUBECTL or kubectl >= 1.24 on PATH (`create token`, `auth whoami` needs 1.28).
# Last line: "attack: N passed, N failed"; exit 1 when any step was not as expected.
set -uo pipefail
: "${KUBECONFIG:?run: eval \"\$(up.sh)\" first}" "${KAPI_SERVER:?}" "${KAPI_CA:?}" "${KAPI_STATE:?}"
HERE=$(cd "$(dirname "$0")" && pwd)
K=${KAPI_KUBECTL:-kubectl}
WORK=$KAPI_STATE/attack
mkdir -p "$WORK"
PASS=0; FAIL=0
hdr() { printf '\n=== %s\n' "$*"; }
# expect allow|deny|vap "what" -- cmd...   (deny also requires the word Forbidden/denied in stderr;
# vap: denied by a ValidatingAdmissionPolicy, not by RBAC)
expect() {
  local want=$1 what=$2; shift 3
  printf '\n--- [%s expected] %s\n$ %s\n' "$want" "$what" "$*"
  local out rc
  out=$("$@" 2>&1); rc=$?
  printf '%s\n' "$out" | head -40
  if [ "$want" = allow ] && [ $rc -eq 0 ]; then PASS=$((PASS+1)); echo "--> OK (allowed)"
  elif [ "$want" = deny ] && [ $rc -ne 0 ] && printf '%s' "$out" | grep -qiE 'forbidden|denied'; then PASS=$((PASS+1)); echo "--> OK (denied)"
  elif [ "$want" = vap ] && [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'ValidatingAdmissionPolicy'; then PASS=$((PASS+1)); echo "--> OK (denied by the policy)"
  else FAIL=$((FAIL+1)); echo "--> UNEXPECTED (rc=$rc, wanted $want)"; fi
}

hdr "setup as admin ($($K version -o json 2>/dev/null | python3 -c 'import json,sys;print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'))"
$K apply -f "$HERE/scenario.yaml" || { echo "setup failed"; exit 1; }

# the policy is loaded asynchronously: wait until a server-side dry run is denied
for _ in $(seq 30); do
  if ! $K create --dry-run=server -f "$HERE/probe-pod.yaml" >/dev/null 2>&1; then break; fi
  sleep 1
done

hdr "steal a token for web/checkout (TokenRequest, as admin)"
SA_TOKEN=$($K create token checkout -n web --duration=1h) || { echo "create token failed"; exit 1; }
echo "token: ${SA_TOKEN:0:24}... ($(printf '%s' "$SA_TOKEN" | wc -c) bytes)"
SAK=$WORK/checkout.kubeconfig
cat > "$SAK" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: kapi, cluster: {server: $KAPI_SERVER, certificate-authority: $KAPI_CA}}]
users: [{name: checkout, user: {token: $SA_TOKEN}}]
contexts: [{name: sa, context: {cluster: kapi, user: checkout, namespace: web}}]
current-context: sa
EOF
chmod 600 "$SAK"
S() { KUBECONFIG=$SAK $K "$@"; }

hdr "attack chain as system:serviceaccount:web:checkout"
expect allow "who am I (SelfSubjectReview)"            -- S auth whoami
expect allow "enumerate own permissions (web)"   -- S auth can-i --list
expect allow "enumerate own permissions (ledger)"      -- S auth can-i --list -n ledger
expect allow "list secrets in all namespaces"           -- S get secrets -A
expect allow "read ledger DB credentials"              -- S get secret ledger-db-password -n ledger -o jsonpath='{.data.password}'
expect deny  "exec into own pod (pods/exec)"            -- S exec checkout-7f9d-0 -c web -- id
expect deny  "exec into ledger pod (get pods denied)"  -- S exec -n ledger ledger-api-0 -- id
expect deny  "bind self to cluster-admin"               -- S create clusterrolebinding pwn-web --clusterrole=cluster-admin --serviceaccount=web:checkout
expect vap   "create privileged hostPID pod"            -- S create -f "$HERE/privileged-pod.yaml"
expect deny  "mint token for ledger/ledger-worker" -- S create token ledger-worker -n ledger
expect deny  "mint token for kube-system/default"       -- S create token default -n kube-system
expect deny  "list nodes"                               -- S get nodes

hdr "admission as admin: RBAC allows, ValidatingAdmissionPolicy denies"
expect vap   "admin creates privileged pod"             -- $K create -f "$HERE/privileged-pod.yaml"
expect allow "admin creates ordinary pod"               -- $K run ordinary-0 -n web --image=nginx:1.27 --restart=Never

# let the batch webhook (max wait 1s) flush
sleep 3
if [ -n "${KAPI_WEBHOOK_DIR:-}" ] && [ -d "$KAPI_WEBHOOK_DIR" ]; then
  hdr "audit webhook batches in $KAPI_WEBHOOK_DIR"
  python3 - "$KAPI_WEBHOOK_DIR" <<'EOF'
import glob, json, sys, collections
files = sorted(glob.glob(sys.argv[1] + "/*.json"))
kinds = collections.Counter(); ev = 0; dec = collections.Counter(); sa = []
for f in files:
    d = json.load(open(f)); kinds[(d.get("apiVersion"), d.get("kind"))] += 1
    for e in d.get("items", []):
        ev += 1
        a = e.get("annotations", {})
        if "authorization.k8s.io/decision" in a: dec[a["authorization.k8s.io/decision"]] += 1
        if e["user"]["username"] == "system:serviceaccount:web:checkout":
            sa.append(e)
print("batches:", len(files), dict(kinds), "events:", ev, "decisions:", dict(dec))
for e in sa:
    o = e.get("objectRef", {}); a = e.get("annotations", {})
    print("%-6s %-8s %-30s %-26s %s %s" % (e["verb"], a.get("authorization.k8s.io/decision", "-"),
          (o.get("resource", "") + ("/" + o["subresource"] if o.get("subresource") else "")),
          (o.get("namespace", "") + "/" + o.get("name", "")), e["responseStatus"]["code"],
          a.get("authorization.k8s.io/reason", "")[:80]))
EOF
fi
echo
echo "attack: $PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
