#!/bin/bash
# xtask/bench/bench-static-up.sh - `nmcli connection up` of a STATIC profile
# until its address is in the kernel, for daemons with NetworkManager's API
# (adapters nm and nmrs; others are skipped).
#
# The peers' bench-reactivate.sh re-activates the DHCP link, which nm-rs
# cannot do yet (no DHCP), so this compares like with like: the same static
# profile, added through each daemon's own API with nmcli.
#
# Sourced lab: `cargo xtask bench core` copies this script beside a copy of
# ../shared/peer-bench/lab.sh (it sources "$(dirname "$0")/lab.sh").
#
# Per daemon: start it on the usual DHCP-link profile (lab-dhcp), wait until
# ready and idle; switch lab-dhcp to autoconnect=no and take it down; add
#   lab-static: ethernet on ${LAB_PREFIX}-c0, no autoconnect, ipv4 manual
#               198.18.0.10/24 (in dnsmasq's subnet, outside its pool),
#               gateway 198.18.0.1, ipv6 disabled
# then RUNS times: `connection down lab-static` (after the first run), wait
# until the address is gone, 1 s pause, wait for the daemon to be idle, then
# `connection up lab-static`. Reported:
#   static_up_cmd_ms   nmcli's own run time (it waits for the activation)
#   static_up_addr_ms  command start -> the address appears in the kernel
#                      (timestamp of the RTM_NEWADDR from `ip -ts monitor`,
#                      which runs throughout; so the measurement adds no
#                      polling load on the 2 cores while the daemon works)
#   static_up_call_addr_ms  the daemon's share: nmcli's ActivateConnection
#                      call seen on the bus (a `busctl monitor` matching only
#                      that call) -> the address appears; the rest of
#                      static_up_addr_ms is nmcli's own start-up (libnm reads
#                      the whole object tree first), the same for every daemon
#   static_up_cpu_ms   daemon CPU from command start until both happened
#
# Run (root):  bash bench-static-up.sh [-n RUNS] nm nmrs
. "$(dirname "$0")/lab.sh"
set -u   # after sourcing: lab.sh itself is not written for it, its functions are
RUNS=5
STATIC_ADDR=198.18.0.10/24
while getopts "n:" o; do case $o in n) RUNS=$OPTARG ;; *) exit 2 ;; esac; done
shift $((OPTIND - 1)); DAEMONS=("${@:-nm}")
MONPID= BUSPID=

su_cli() { lab_in dut env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" nmcli "$@"; }
su_has_addr() { ip -n "$LAB_CLI_NS" -4 -o addr show dev "$LAB_CLI_IF" 2>/dev/null | grep -qF "inet $STATIC_ADDR "; }
su_no_addr() { ! su_has_addr; }
su_monitor_stop() {
  local p
  for p in $MONPID $BUSPID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  MONPID= BUSPID=
}
# us since the epoch of the first (not "Deleted") appearance of the address
# in monitor output FILE; `ip -ts` prints local time with microseconds
su_first_add_us() {
  local ts
  ts=$(grep -F " inet $STATIC_ADDR " "$1" | grep -v '\] *Deleted' | head -n1 | sed -n 's/^\[\([^]]*\)\].*/\1/p')
  [[ -n $ts ]] && date -d "$ts" +%s%6N 2>/dev/null
}

# us since the epoch at which the bus monitor saw the first ActivateConnection
# call (busctl's JSON output FILE)
su_call_us() { grep -o '"timestamp-realtime":[0-9]*' "$1" 2>/dev/null | head -n1 | cut -d: -f2; }

lab_bench_begin 0
trap 'su_monitor_stop; lab_bench_end' EXIT
mon=$LAB_WORK/static-up.monitor busmon=$LAB_WORK/static-up.bus
for d in "${DAEMONS[@]}"; do
  lab_load_adapter "$d"
  if [[ $DUT_NAME != nm && $DUT_NAME != nmrs ]]; then
    lab_log "static-up: $DUT_NAME has no nmcli-driven API, skipped"
    continue
  fi
  lab_dnsmasq_stop; lab_cli_reset; lab_dnsmasq_start noping
  lab_dut_fresh dhcp; dut_start >/dev/null
  if ! lab_wait "$LAB_TIMEOUT" lab_ready4 >/dev/null; then
    lab_result "$DUT_NAME" static_up_addr_ms FAIL ms "lab-dhcp never ready"; dut_stop; continue
  fi
  lab_wait_quiet dut 30 >/dev/null
  # lab-dhcp must not come back by itself once lab-static is down
  if ! su_cli connection modify lab-dhcp connection.autoconnect no >/dev/null ||
     ! su_cli connection down lab-dhcp >/dev/null ||
     ! lab_wait 20 lab_not_ready4 >/dev/null ||
     ! su_cli connection add type ethernet con-name lab-static ifname "$LAB_CLI_IF" connection.autoconnect no \
         ipv4.method manual ipv4.addresses "$STATIC_ADDR" ipv4.gateway "$LAB_SRV_V4" ipv6.method disabled >/dev/null; then
    lab_result "$DUT_NAME" static_up_addr_ms FAIL ms "set-up (modify/down lab-dhcp, add lab-static) failed"; dut_stop; continue
  fi
  for ((r = 1; r <= RUNS; r++)); do
    if (( r > 1 )); then
      su_cli connection down lab-static >/dev/null
      lab_wait 20 su_no_addr >/dev/null || { lab_result "$DUT_NAME" static_up_addr_ms FAIL ms "address still there 20 s after down"; break; }
    fi
    sleep 1; lab_wait_quiet dut 30 >/dev/null
    ip -n "$LAB_CLI_NS" -ts monitor address > "$mon" 2>/dev/null & MONPID=$!
    busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" monitor --json=short \
      --match="type=method_call,member=ActivateConnection" > "$busmon" 2>/dev/null & BUSPID=$!
    sleep 0.2   # let the monitors subscribe before the command starts
    c0=$(lab_cpu_ns dut); t0=$(lab_us)
    su_cli connection up lab-static >/dev/null; rc=$?; tc=$(lab_us)
    if ! t1=$(lab_wait 20 su_has_addr); then
      su_monitor_stop
      lab_result "$DUT_NAME" static_up_addr_ms FAIL ms "no $STATIC_ADDR 20 s after up (nmcli rc=$rc)"; continue
    fi
    c1=$(lab_cpu_ns dut)
    sleep 0.05; su_monitor_stop
    ta=$(su_first_add_us "$mon") tcall=$(su_call_us "$busmon")
    note="monitor"
    # fall back to the polled time when the monitor line is missing or odd
    if [[ -z $ta ]] || (( ta < t0 || ta > t1 )); then ta=$t1; note="polled"; fi
    lab_result "$DUT_NAME" static_up_cmd_ms "$(lab_ms $((tc - t0)))" ms "nmcli rc=$rc"
    lab_result "$DUT_NAME" static_up_addr_ms "$(lab_ms $((ta - t0)))" ms "$note"
    if [[ $note == monitor && -n $tcall ]] && (( tcall >= t0 && tcall <= ta )); then
      lab_result "$DUT_NAME" static_up_call_addr_ms "$(lab_ms $((ta - tcall)))" ms "call at $(lab_ms $((tcall - t0))) ms"
    else
      lab_result "$DUT_NAME" static_up_call_addr_ms FAIL ms "no ActivateConnection before the address in the bus monitor"
    fi
    lab_result "$DUT_NAME" static_up_cpu_ms "$(lab_cpu_ms $((c1 - c0)))" ms
  done
  dut_stop
done
