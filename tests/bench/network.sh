# The two-site form over a real network, for the benchmarks' --network runs
# (issue 16): the region's lsid in one network namespace, a site's lsifs
# --region in another, joined by a veth pair whose two ends the kernel holds
# to the profile's bandwidth (tc tbf, both directions). The profile's latency
# is the site's link model (origin_latency: one round trip per request to
# the region), as in the in-process runs; what differs from them is the real
# path: TCP, TLS 1.3, lsid re-sealing every block for the site, the kernel's
# shaping, and the layers pulled to the site before use.
#
# Source it (after profiles.sh, with $bin the programs' folder), then:
#   net_up PROFILE WORK        namespaces, shaping, a CA and lsid, on the
#                              region's store $LSIFS_STORE (lsictl there
#                              reaches lsid through the control socket)
#   net_site NAME EXT          a site folder WORK/site-NAME holding EXT's key
#                              and certificate; prints its path
#   net_mount SITE MNT EXT OPTS  lsifs --region SITE MNT in the background,
#                              with the profile's latency (its bandwidth is
#                              the kernel's); returns once mounted
#   net_lsictl SITE ARGS...    lsictl --region from the site
#   net_wait_pulled SITE LSI   until every layer of LSI is in SITE; prints
#                              the seconds it waited
#   net_wait_sessions EXT VOLUME N  until the region has N ended sessions
#   net_down                   stops and removes all of it (call it on exit)
NET_NS_REGION="" NET_NS_SITE="" NET_PIDS=() NET_MOUNTS=() NET_WORK="" NET_LATENCY=""
NET_ADDR=10.80.0.1 NET_URL=https://10.80.0.1:8443

net_rate_bytes() {  # net_rate_bytes 200Mbit: bytes per second
  python3 -c "
import re, sys
m = re.fullmatch(r'(\d+)([KMG]?)bit', sys.argv[1], re.I)
print(int(m.group(1)) * {'': 1, 'k': 10**3, 'm': 10**6, 'g': 10**9}[m.group(2).lower()] // 8)" "$1"
}

net_up() {
  local profile=$1 p rate burst ns
  NET_WORK=$2
  p=$(wan_profile "$profile") && [ -n "$p" ] ||
    { echo "network.sh: --network needs a profile (metro, edge, constrained)" >&2; return 1; }
  NET_LATENCY=${p% *} rate=${p#* }
  NET_NS_REGION=lsifs-bench-region-$$ NET_NS_SITE=lsifs-bench-site-$$
  ip netns add "$NET_NS_REGION"
  ip netns add "$NET_NS_SITE"
  ip link add "br$$" netns "$NET_NS_REGION" type veth peer name "bs$$" netns "$NET_NS_SITE"
  ip -n "$NET_NS_REGION" addr add "$NET_ADDR/24" dev "br$$"
  ip -n "$NET_NS_SITE" addr add 10.80.0.2/24 dev "bs$$"
  for ns in "$NET_NS_REGION" "$NET_NS_SITE"; do ip -n "$ns" link set lo up; done
  ip -n "$NET_NS_REGION" link set "br$$" up
  ip -n "$NET_NS_SITE" link set "bs$$" up
  # Each direction at the profile's rate; a burst of 10 ms of it (at least
  # 64 KiB) and at most 100 ms of queue, as a WAN router would hold.
  burst=$(( $(net_rate_bytes "$rate") / 100 ))
  [ "$burst" -ge 65536 ] || burst=65536
  tc -n "$NET_NS_REGION" qdisc add dev "br$$" root tbf rate "$rate" burst "$burst" latency 100ms
  tc -n "$NET_NS_SITE" qdisc add dev "bs$$" root tbf rate "$rate" burst "$burst" latency 100ms
  "$bin/lsictl" ca init --host "$NET_ADDR" >/dev/null
  # lsid and lsifs enter the namespaces' network only (nsenter --net): a
  # mount namespace of their own (ip netns exec makes one) would keep a
  # copy of every FUSE mount made after it alive past its unmount.
  nsenter --net="/run/netns/$NET_NS_REGION" "$bin/lsid" "$LSIFS_STORE" \
    --listen "$NET_ADDR:8443" 2>>"$NET_WORK/lsid.log" &
  NET_PIDS+=($!)
  for _ in $(seq 100); do grep -q serving "$NET_WORK/lsid.log" 2>/dev/null && break; sleep 0.1; done
  grep -q serving "$NET_WORK/lsid.log" || { cat "$NET_WORK/lsid.log" >&2; return 1; }
  echo "network: lsid at $NET_URL; the veth pair shaped to $rate each way (tc tbf," \
    "burst $burst B); $NET_LATENCY per request from the site's link model" >&2
}

net_site() {
  local site=$NET_WORK/site-$1
  mkdir -p "$site/keys"
  "$bin/lsictl" cert issue "$2" --out "$site/tls" >/dev/null
  cp -p "$LSIFS_STORE/keys/$2.key" "$site/keys/"
  echo "$site"
}

net_mount() {
  nsenter --net="/run/netns/$NET_NS_SITE" "$bin/lsifs" --region "$NET_URL" "$1" "$2" -e "$3" -f \
    -o "origin_latency=$NET_LATENCY${4:+,$4}" 2>>"$NET_WORK/lsifs-site.log" &
  NET_PIDS+=($!)
  NET_MOUNTS+=("$2")
  for _ in $(seq 100); do mountpoint -q "$2" && break; sleep 0.1; done
  mountpoint -q "$2" || { cat "$NET_WORK/lsifs-site.log" >&2; return 1; }
}

net_lsictl() {
  local site=$1
  shift
  nsenter --net="/run/netns/$NET_NS_SITE" "$bin/lsictl" --region "$NET_URL" -s "$site" "$@"
}

net_wait_pulled() {
  local site=$1 lsi=$2 layers t0 l missing
  layers=$("$bin/lsictl" lsi show "$lsi" --json |
    python3 -c 'import json, sys; print(" ".join(l["layer"] for l in json.load(sys.stdin)["layer_list"]))')
  t0=$(date +%s.%N)
  for _ in $(seq 36000); do
    missing=0
    for l in $layers; do [ -e "$site/layers/$l.layer" ] || missing=1; done
    [ $missing -eq 0 ] && break
    sleep 0.05
  done
  [ $missing -eq 0 ] || { echo "network.sh: LSI $lsi was not pulled to $site in 30 min" >&2; return 1; }
  python3 -c "print(round($(date +%s.%N) - $t0, 3))"
}

net_wait_sessions() {
  local n=0
  for _ in $(seq 600); do
    n=$("$bin/lsictl" --json access show -e "$1" -v "$2" |
      python3 -c 'import json, sys; print(sum(s["state"] == "ended" for s in json.load(sys.stdin)["sessions"]))')
    [ "$n" -ge "$3" ] && return 0
    sleep 0.1
  done
  echo "network.sh: the region has $n of $3 ended sessions of $1 on $2 after 60 s" >&2
  return 1
}

net_down() {
  local m p
  for m in "${NET_MOUNTS[@]}"; do mountpoint -q "$m" && fusermount3 -u "$m"; done
  # A site's lsifs may have ended at its unmount already: kill then fails
  # (which must not end the run under set -e); an exit status is reported.
  for p in "${NET_PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || echo "network.sh: process $p exited with status $?" >&2
  done
  NET_MOUNTS=() NET_PIDS=()
  [ -n "$NET_NS_REGION" ] && ip netns del "$NET_NS_REGION" 2>/dev/null
  [ -n "$NET_NS_SITE" ] && ip netns del "$NET_NS_SITE" 2>/dev/null
  NET_NS_REGION="" NET_NS_SITE=""
}
