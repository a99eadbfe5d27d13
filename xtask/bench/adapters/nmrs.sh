# xtask/bench/adapters/nmrs.sh - "daemon under test" adapter for nm-rs, for
# the peer-bench lab (../shared/peer-bench/lab.sh documents the interface).
#
# Sourced by the bench scripts, never run directly: `cargo xtask bench core`
# copies it into adapters/ beside a copy of lab.sh, because lab.sh loads
# adapters only from its own directory.
#
# nm-rs is three daemons, all run inside the client namespace's sandbox with
# the same --root ROOT, a directory in the sandbox dir whose run/ and
# var/lib/NetworkManager lead to the sandbox's own /run and state dir (see
# dut_prepare), so nothing outside the sandbox is read or written:
#   nm-dhcp-helper      the DHCPv4 client, as its systemd unit runs it: an
#                       unprivileged user (nobody here) with only CAP_NET_RAW
#                       and CAP_NET_BIND_SERVICE; started as root, it drops to
#                       them itself (--user, as an init without systemd runs
#                       it); leases in the state dir
#   nm-system-settings  profiles from ROOT/etc/NetworkManager/system-connections,
#                       on the bus as org.freedesktop.NetworkManagerSystemSettings
#   nm-core             devices and activation, org.freedesktop.NetworkManager;
#                       config ROOT/etc/NetworkManager/nm-rs.toml
# All use the lab's private system bus (DBUS_SYSTEM_BUS_ADDRESS); its policy
# (lab_dbus_start) lets anyone own any name and call anything, so our
# dbus-policy/ files are not needed there.
# All run under the one lab_spawn name "dut" (one wrapper shell that starts
# nm-dhcp-helper and nm-system-settings, then execs nm-core), so the lab's
# cgroup accounting counts the CPU of all three (and of the wrapper), and
# dut_pids (RSS/PSS) lists them. nmrs_cpu_ns gives the CPU of the three
# daemons alone (per-thread schedstat, less the wrapper's time).
#
# Profiles mirror adapters/nm.sh: lab-dhcp is ipv4.method=auto (a real
# DHCPv4 lease from the lab's dnsmasq through nm-dhcp-helper) and IPv6 "auto"
# (nm-rs leaves SLAAC to the kernel). In MODE=scale every scale link gets the
# static /30 the peers get.
#
# Knobs: NM_RS_BIN_DIR (directory of the three daemons and nmctl; default:
#        from PATH),
#        NMRS_LOG (NM_RS_LOG filter for the daemons, default info),
#        NMRS_HELPER_UID (default 65534, nobody), NMCLI (default nmcli),
#        NMRS_CTL (the tool of dut_down/dut_up: nm-rs's own nmctl, from
#        NM_RS_BIN_DIR or PATH, as networkd's adapter uses networkctl; set it
#        to nmcli to measure NetworkManager's tool), NMRS_DUT_NAME (the name
#        results are filed under, default nmrs),
#        NMRS_SMAPS_DIR (when set, dut_stop copies each daemon's
#        /proc/PID/smaps there first),
#        NMRS_WRAP (words put before each daemon's command, e.g. valgrind
#        and its options for `cargo xtask bench link-order`; default none).
# Written to work under `set -u`, but does not set it: it is sourced into the
# peer scripts, which are not.

DUT_NAME=${NMRS_DUT_NAME:-nmrs}
NMRS_BIN_DIR=${NM_RS_BIN_DIR:-}
NMRS_LOG=${NMRS_LOG:-info}
NMCLI=${NMCLI:-nmcli}
NMRS_HELPER_UID=${NMRS_HELPER_UID:-65534}
DUT_SB=
NMRS_ROOT=

# nmrs_bin NAME: the binary's path (NM_RS_BIN_DIR/NAME or NAME from PATH)
nmrs_bin() {
  if [[ -n $NMRS_BIN_DIR ]]; then echo "$NMRS_BIN_DIR/$1"; else command -v "$1"; fi
}

# Resolved once here: a lookup inside dut_up would be timed with it.
NMRS_CTL=${NMRS_CTL:-$(nmrs_bin nmctl)}
NMRS_CTL=${NMRS_CTL:-$NMCLI}

# nmrs_profile FILE ID UUID IFACE IPV4-LINES IPV6-LINES: one 0600 keyfile
nmrs_profile() {
  local f=$1 id=$2 uuid=$3 ifname=$4 v4=$5 v6=$6
  cat > "$f" <<EOF
[connection]
id=$id
uuid=$uuid
type=ethernet
interface-name=$ifname
autoconnect=true

[ethernet]

[ipv4]
$v4

[ipv6]
$v6
EOF
  chmod 600 "$f"
}

dut_prepare() {
  local sb=$1 mode=${2:-dhcp} i n conns
  DUT_SB=$sb
  NMRS_ROOT=$sb/nmrs-root
  conns=$NMRS_ROOT/etc/NetworkManager/system-connections
  mkdir -p "$conns" "$NMRS_ROOT/var/lib"
  chmod 700 "$conns"
  # Runtime and state files where NetworkManager's go in the sandbox: ROOT/run
  # is the sandbox's tmpfs /run (not the disk under LAB_WORK, where every
  # fsync would cost what NetworkManager does not pay), ROOT/var/lib/
  # NetworkManager the sandbox's private directory. The links resolve inside
  # the daemons' mount namespace only; `rm -rf` of the sandbox removes just
  # the links.
  ln -sfn /run "$NMRS_ROOT/run"
  ln -sfn /var/lib/NetworkManager "$NMRS_ROOT/var/lib/NetworkManager"
  # veths are unmanaged by default (DESIGN §4); manage exactly the lab's
  # links, as adapters/nm.sh does. dns=none as NetworkManager's dns=none.
  cat > "$NMRS_ROOT/etc/NetworkManager/nm-rs.toml" <<EOF
[core]
managed = ["interface-name:${LAB_PREFIX}-*"]
dns = "none"
EOF
  # the helper (not root) keeps its leases in the state dir
  chown "$NMRS_HELPER_UID:$NMRS_HELPER_UID" "$sb/var-lib-nm"
  nmrs_profile "$conns/lab-dhcp.nmconnection" lab-dhcp 6c61622d-6468-4370-8000-000000000001 "$LAB_CLI_IF" \
    "method=auto" \
    "method=auto
addr-gen-mode=eui64"
  if [[ $mode == scale ]]; then
    n=${LAB_NSCALE:-300}
    for ((i = 0; i < n; i++)); do
      nmrs_profile "$conns/lab-x$i.nmconnection" "lab-x$i" "6c61622d-7363-4c65-8000-$(printf '%012d' "$i")" \
        "${LAB_PREFIX}-x$i" "method=manual
address1=$(lab_scale_addr "$i")" "method=disabled"
    done
  fi
}

# The wrapper run as "dut" in the sandbox, a POSIX sh (dash starts in a
# fraction of bash's time): nm-dhcp-helper (which makes itself unprivileged
# with two capabilities: --user) and nm-system-settings in the background,
# then exec nm-core, which keeps
# the recorded PID. No waits: the three start side by side, as systemd
# starts them, and nm-core copes with either service coming later (it waits
# for nm-system-settings before autoconnecting and for nm-dhcp-helper
# before starting DHCP). The two PIDs (with their start times, read with
# the shell's own `read`: no subshell) go to $LAB_WORK/nmrs-helpers.pids for
# dut_stop, dut_pids and nmrs_cpu_ns; the wrapper's own CPU time until the
# exec goes to $LAB_WORK/nmrs-wrapper.ns, for nmrs_cpu_ns to take off
# nm-core's (the exec keeps the PID, and so the shell's time). $NMRS_WRAP,
# unquoted on purpose, is empty or a command with its options.
NMRS_WRAPPER='
settings=$1 core=$2 helper=$3 uid=$4 root=$5 pidfile=$6 wrapper_ns=$7
if [ -z "$NMRS_WRAP" ]; then
  "$helper" --root "$root" --user "$uid" &
else
  # Under a profiler the user changes before it starts: callgrind creates
  # its output file at start and writes it at exit, as whoever it is then.
  caps=-all,+net_raw,+net_bind_service
  setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=$caps --ambient-caps=$caps \
    --bounding-set=$caps -- $NMRS_WRAP "$helper" --root "$root" &
fi
hp=$!
$NMRS_WRAP "$settings" --root "$root" &
sp=$!
read -r _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ hs _ < /proc/$hp/stat
read -r _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ ss _ < /proc/$sp/stat
printf "%s %s\n%s %s\n" "$hp" "$hs" "$sp" "$ss" > "$pidfile"
read -r ns _ < /proc/$$/schedstat
echo "$ns" > "$wrapper_ns"
exec $NMRS_WRAP "$core" --root "$root"
'

dut_start() {
  local settings core helper
  settings=$(nmrs_bin nm-system-settings) && core=$(nmrs_bin nm-core) && helper=$(nmrs_bin nm-dhcp-helper) ||
    { lab_log "nmrs: binaries not found"; return 1; }
  [[ -x $settings && -x $core && -x $helper ]] || { lab_log "nmrs: $settings, $core or $helper is not executable"; return 1; }
  lab_spawn dut "$LAB_CLI_NS" "$DUT_SB" "$LAB_WORK/dut.log" \
    env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" NM_RS_LOG="$NMRS_LOG" NMRS_WRAP="${NMRS_WRAP:-}" \
    sh -c "$NMRS_WRAPPER" nmrs-dut "$settings" "$core" "$helper" "$NMRS_HELPER_UID" "$NMRS_ROOT" \
    "$LAB_WORK/nmrs-helpers.pids" "$LAB_WORK/nmrs-wrapper.ns" >/dev/null
}

# PIDs of nm-dhcp-helper and nm-system-settings that are still the
# processes the wrapper started
nmrs_helper_pids() {
  local p s f=$LAB_WORK/nmrs-helpers.pids
  [[ -f $f ]] || return 0
  while read -r p s; do
    [[ -n ${p:-} && $(lab_pid_start "$p") == "${s:-x}" ]] && echo "$p"
  done < "$f"
  return 0
}
# nm-dhcp-helper's PID (the first line)
nmrs_dhcp_pid() { nmrs_helper_pids | head -n1; }

dut_stop() {
  local p
  # NMRS_SMAPS_DIR: keep each daemon's memory map before it goes (to see
  # where the RSS is: awk over the Rss: lines per mapping).
  if [[ -n ${NMRS_SMAPS_DIR:-} ]]; then
    mkdir -p "$NMRS_SMAPS_DIR"
    for p in $(dut_pids); do
      cp "/proc/$p/smaps" "$NMRS_SMAPS_DIR/$(cat "/proc/$p/comm" 2>/dev/null || echo x)-$p.smaps" 2>/dev/null
    done
  fi
  # TERM the other daemons as well, at once: lab_kill waits (5 s) for the
  # whole cgroup to empty before it KILLs what is left.
  for p in $(nmrs_helper_pids); do kill -TERM "$p" 2>/dev/null; done
  lab_kill dut
  for p in $(nmrs_helper_pids); do kill -KILL "$p" 2>/dev/null; done
  rm -f "$LAB_WORK/nmrs-helpers.pids" "$LAB_WORK/nmrs-wrapper.ns"
  return 0
}

# The three daemons (the cgroup holds exactly them).
dut_pids() {
  local pids
  pids=$(lab_cg_pids dut)
  if [[ -z $pids ]]; then pids="$(lab_pid dut) $(nmrs_helper_pids)"; fi
  printf '%s\n' $pids
}

# CPU nanoseconds of the three daemons alone: the sum of every thread's run
# time from /proc/PID/task/*/schedstat (ns, unlike /proc/PID/stat's ticks),
# less what the wrapper shell ran under nm-core's PID before its exec. (The
# other two are the shell's children: what ran before their exec is a
# fork's few microseconds.) With PIDs: of those processes only.
nmrs_cpu_ns() {
  local p pids=("$@") core less wrapper=0
  (( ${#pids[@]} )) || pids=($(lab_pid dut) $(nmrs_helper_pids))
  core=$(lab_pid dut)
  [[ -r $LAB_WORK/nmrs-wrapper.ns ]] && read -r wrapper < "$LAB_WORK/nmrs-wrapper.ns"
  for p in "${pids[@]}"; do
    less=0
    [[ $p == "$core" ]] && less=${wrapper:-0}
    cat /proc/"$p"/task/*/schedstat 2>/dev/null | awk -v less="$less" '{s += $1} END {printf "%d\n", s - less}'
  done | awk '{s += $1} END {printf "%d\n", s}'
}

nmrs_cli() { lab_in dut env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" "$NMCLI" "$@"; }
nmrs_ctl() { lab_in dut env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" "$NMRS_CTL" "$@"; }
# both wait for the change, as nmcli does
dut_down() { nmrs_ctl connection down lab-dhcp >/dev/null; }
dut_up() { nmrs_ctl connection up lab-dhcp >/dev/null; }
dut_query() { nmrs_cli general >/dev/null; }
dut_settled() { lab_in dut env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" nm-online -s -q -t 0 >/dev/null 2>&1; }
# single D-Bus round trip into nm-core (no object-tree download like nmcli)
dut_query_light() {
  lab_in dut busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" get-property org.freedesktop.NetworkManager \
    /org/freedesktop/NetworkManager org.freedesktop.NetworkManager State >/dev/null
}
