#!/usr/bin/env bash
# lsid as an operator runs it: a store with a CA, two sites' certificates,
# lsid listening on an address inside a network namespace this test makes,
# and curl as the sites (mutual TLS 1.3). Usage: lsid_test.sh BIN_DIR
BIN=$1
source "$(dirname "$0")/lib.sh"
LSICTL=$BIN/lsictl
LSID=$BIN/lsid
[ "$(id -u)" -eq 0 ] || { echo "FAIL: lsid_test.sh makes a network namespace: run as root" >&2; exit 1; }

NS=lsifs-lsid-$$
ADDR=10.78.0.1
ip netns add "$NS"
on_exit "ip netns del $NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add lsid0 type veth peer name lsid1
ip -n "$NS" addr add "$ADDR/24" dev lsid0
ip -n "$NS" link set lsid0 up
ip -n "$NS" link set lsid1 up

S=$WORK/store
"$LSICTL" init "$S" >/dev/null
head -c $((4 << 20)) /dev/urandom >"$WORK/image"
"$LSICTL" -s "$S" import vol "$WORK/image" >/dev/null
"$LSICTL" -s "$S" key create site-a >/dev/null
"$LSICTL" -s "$S" key create site-b >/dev/null
"$LSICTL" -s "$S" ca init --host "$ADDR" >/dev/null
for ext in site-a site-b; do
  "$LSICTL" -s "$S" cert issue "$ext" --out "$WORK/$ext" >/dev/null
done

ip netns exec "$NS" "$LSID" "$S" --listen "$ADDR:8443" 2>"$WORK/lsid.log" &
LSID_PID=$!
on_exit "kill $LSID_PID 2>/dev/null; wait $LSID_PID 2>/dev/null"
for _ in $(seq 100); do grep -q "serving" "$WORK/lsid.log" && break; sleep 0.1; done
check "lsid says where it serves" grep -q "serving .* on https://$ADDR:8443" "$WORK/lsid.log"

# site_curl EXT ARGS...: curl in the namespace with EXT's certificate.
site_curl() {
  local ext=$1; shift
  ip netns exec "$NS" curl -sS --max-time 10 --cacert "$WORK/$ext/ca.crt" \
    --cert "$WORK/$ext/$ext.crt" --key "$WORK/$ext/$ext.key" "$@"
}
URL=https://$ADDR:8443

lists_volumes() { site_curl site-a "$URL/v1/volumes" | grep -q '"volume":"vol"'; }
check "site-a is served the volumes over TLS 1.3" lists_volumes
no_client_cert() {
  ! ip netns exec "$NS" curl -sS --max-time 10 --cacert "$WORK/site-a/ca.crt" \
    "$URL/v1/volumes" >/dev/null 2>&1
}
check "a client without a certificate gets nothing" no_client_cert
no_tls12() { ! site_curl site-a --tlsv1.2 --tls-max 1.2 "$URL/v1/volumes" >/dev/null 2>&1; }
check "TLS 1.2 is refused" no_tls12
status_of() { site_curl site-a -o /dev/null -w '%{http_code}' "$@"; }
check "an unknown route is 404" test "$(status_of "$URL/v1/nothing")" = 404
check "a bad method is 400" test "$(status_of -X DELETE "$URL/v1/volumes")" = 400
check "an encoded path is refused" test "$(status_of "$URL/v1/volumes/..%2f/snapshots/latest")" = 404
restores() {
  site_curl site-a -X POST -d '{"volume":"vol"}' "$URL/v1/restore" | grep -q '"extension":"site-a"'
}
check "a restore for the certificate's extension works" restores
check "lsictl on the region reaches lsid's database" \
  bash -c "'$LSICTL' -s '$S' lsi list --json | grep -q site-a"

# Revoked: refused after SIGHUP (and within a second without it).
before=$(status_of "$URL/v1/volumes")
"$LSICTL" -s "$S" cert revoke site-b >/dev/null
kill -HUP "$LSID_PID"
sleep 0.3
revoked_status() { site_curl site-b -o "$WORK/revoked.json" -w '%{http_code}' "$URL/v1/volumes"; }
check "a revoked certificate is refused (403) without a restart" test "$(revoked_status)" = 403
check "the refusal says it is revoked" grep -q revoked "$WORK/revoked.json"
check "the other site is still served" test "$before" = 200 -a "$(status_of "$URL/v1/volumes")" = 200
check "lsid logs the refusal" grep -q "refused revoked certificate" "$WORK/lsid.log"

kill -TERM "$LSID_PID"
rc=0
for _ in $(seq 100); do kill -0 "$LSID_PID" 2>/dev/null || break; sleep 0.1; done
wait "$LSID_PID" || rc=$?
check "SIGTERM stops lsid cleanly" test "$rc" -eq 0
check "lsid logs its stop" grep -q "stopped" "$WORK/lsid.log"
finish
