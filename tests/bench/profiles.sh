# The WAN profiles of BENCHMARKS.md as lsifs -o options. Source it;
# wan_options PROFILE prints them ("" for none), or fails for an unknown one.
wan_options() {
  case $1 in
    metro) echo origin_latency=5ms,origin_bandwidth=1Gbit ;;
    edge) echo origin_latency=40ms,origin_bandwidth=200Mbit ;;
    constrained) echo origin_latency=150ms,origin_bandwidth=25Mbit ;;
    none) echo "" ;;
    *) return 1 ;;
  esac
}
