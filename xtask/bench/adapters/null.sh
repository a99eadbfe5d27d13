# xtask/bench/adapters/null.sh - the harness's own fixed cost, as a "daemon
# under test" for bench-coldstart.sh (../shared/peer-bench/lab.sh documents
# the interface).
#
# Sourced by the bench scripts, never run directly: `cargo xtask bench dhcp`
# copies it into adapters/ beside a copy of lab.sh.
#
# Its dut_start goes through the same lab_spawn (ip netns exec, unshare,
# sandbox mounts, cgroup) as every daemon, and inside the sandbox does at
# once what a DHCP client does at the end: the lease's address (outside
# dnsmasq's pool), the link up and the default route via the server, with
# one `ip -batch`; then it sleeps. Its cold_v4_ms is what the harness itself
# costs a daemon's cold start (sandbox set-up, the ip monitor + poll that
# detects readiness, one netlink round of configuration) with no protocol
# and no daemon start-up at all; `bench dhcp` subtracts it from every
# daemon's cold start.

DUT_NAME=null
NULL_ADDR=198.18.0.9/24
DUT_SB=

dut_prepare() {
  DUT_SB=$1
  printf 'address add %s dev %s\nlink set %s up\nroute add default via %s dev %s\n' \
    "$NULL_ADDR" "$LAB_CLI_IF" "$LAB_CLI_IF" "$LAB_SRV_V4" "$LAB_CLI_IF" > "$DUT_SB/null.batch"
}

dut_start() {
  lab_spawn dut "$LAB_CLI_NS" "$DUT_SB" "$LAB_WORK/dut.log" \
    bash -c 'ip -batch "$1" && exec sleep 3600' null-dut "$DUT_SB/null.batch" >/dev/null
}
dut_stop() { lab_kill dut; }
dut_pids() { lab_cg_pids dut; }
dut_down() { ip -n "$LAB_CLI_NS" address flush dev "$LAB_CLI_IF"; }
dut_up() { ip -n "$LAB_CLI_NS" -batch "$DUT_SB/null.batch"; }
dut_query() { return 0; }
dut_settled() { return 0; }
