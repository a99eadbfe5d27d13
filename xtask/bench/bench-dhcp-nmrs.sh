#!/bin/bash
# xtask/bench/bench-dhcp-nmrs.sh - what bench-coldstart.sh cannot tell about
# nm-rs's DHCP start: the CPU of the nm-rs daemons alone and the memory of
# each daemon with one lease. Adapter nmrs only (others are skipped).
#
# Sourced lab: `cargo xtask bench dhcp` copies this script beside a copy of
# ../shared/peer-bench/lab.sh (it sources "$(dirname "$0")/lab.sh").
#
# RUNS times, as a cold start of bench-coldstart.sh (fresh dnsmasq with
# --no-ping and lease file, fresh sandbox): start nm-rs, wait for the DHCPv4
# address and default route, then read at once
#   dhcp_cpu_daemons_ms  CPU of nm-dhcp-helper + nm-system-settings + nm-core
#                        until then (adapter's nmrs_cpu_ns: per-thread
#                        schedstat), without the adapter's wrapper shell,
#                        which the cgroup's cpu_ready_ms counts
#   dhcp_cpu_cgroup_ms   the cgroup's figure at the same moment (as cpu_ready_ms)
#   dhcp_cpu_{helper,settings,core}_ms  each daemon's share
# and, once the daemons are idle (lab_wait_quiet),
#   helper_rss_kb / helper_pss_kb  nm-dhcp-helper holding its one lease
#   core_pss_kb / settings_pss_kb  nm-core, nm-system-settings
#   daemons_pss_kb       the three together (smaps_rollup Pss)
#
# Run (root):  bash bench-dhcp-nmrs.sh [-n RUNS] nmrs
. "$(dirname "$0")/lab.sh"
set -u   # after sourcing: lab.sh itself is not written for it
RUNS=5
while getopts "n:" o; do case $o in n) RUNS=$OPTARG ;; *) exit 2 ;; esac; done
shift $((OPTIND - 1)); DAEMONS=("${@:-nmrs}")

pss_of() { lab_mem "$@" | awk '{print $2}'; }

lab_bench_begin 0
for d in "${DAEMONS[@]}"; do
  lab_load_adapter "$d"
  if [[ $DUT_NAME != nmrs ]]; then lab_log "dhcp-nmrs: $DUT_NAME skipped (nm-rs only)"; continue; fi
  for ((r = 1; r <= RUNS; r++)); do
    lab_dnsmasq_stop; lab_cli_reset; lab_dnsmasq_start noping
    lab_dut_fresh dhcp
    dut_start >/dev/null
    if ! lab_wait "$LAB_TIMEOUT" lab_ready4 >/dev/null; then
      lab_result nmrs dhcp_cpu_daemons_ms FAIL ms "no v4 address+default route within ${LAB_TIMEOUT}s"
      dut_stop; continue
    fi
    cd_ns=$(nmrs_cpu_ns) cg_ns=$(lab_cpu_ns dut)
    hp=$(nmrs_dhcp_pid) cp=$(lab_pid dut)
    sp=$(nmrs_helper_pids | sed -n 2p)
    h_ns=$(nmrs_cpu_ns "$hp") s_ns=$(nmrs_cpu_ns "$sp") c_ns=$(nmrs_cpu_ns "$cp")
    lab_result nmrs dhcp_cpu_daemons_ms "$(lab_cpu_ms "$cd_ns")" ms "addr=$(lab_addr4)"
    lab_result nmrs dhcp_cpu_cgroup_ms "$(lab_cpu_ms "$cg_ns")" ms
    lab_result nmrs dhcp_cpu_helper_ms "$(lab_cpu_ms "$h_ns")" ms
    lab_result nmrs dhcp_cpu_settings_ms "$(lab_cpu_ms "$s_ns")" ms
    lab_result nmrs dhcp_cpu_core_ms "$(lab_cpu_ms "$c_ns")" ms
    lab_wait_quiet dut 30 >/dev/null
    read -r hrss hpss < <(lab_mem "$hp")
    lab_result nmrs helper_rss_kb "$hrss" kB "pid=$hp leases=$(ls "$DUT_SB/var-lib-nm" | grep -c '\.lease$')"
    lab_result nmrs helper_pss_kb "$hpss" kB
    lab_result nmrs core_pss_kb "$(pss_of "$cp")" kB
    lab_result nmrs settings_pss_kb "$(pss_of "$sp")" kB
    lab_result nmrs daemons_pss_kb "$(pss_of "$hp" "$sp" "$cp")" kB
    dut_stop
  done
done
