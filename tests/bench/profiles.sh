# The WAN profiles of BENCHMARKS.md. Source it.
# wan_profile PROFILE prints "LATENCY BANDWIDTH" ("" for none), or fails for
# an unknown one; wan_options PROFILE prints them as lsifs -o options.
wan_profile() {
  case $1 in
    metro) echo "5ms 1Gbit" ;;
    edge) echo "40ms 200Mbit" ;;
    constrained) echo "150ms 25Mbit" ;;
    none) echo "" ;;
    *) return 1 ;;
  esac
}
wan_options() {
  local p
  p=$(wan_profile "$1") || return 1
  [ -n "$p" ] && echo "origin_latency=${p% *},origin_bandwidth=${p#* }"
  return 0
}
