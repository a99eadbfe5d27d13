# xtask/bench/adapters/nmrs.sh - "daemon under test" adapter for nm-rs, for
# the peer-bench lab (../shared/peer-bench/lab.sh documents the interface).
#
# Sourced by the bench scripts, never run directly: `cargo xtask bench core`
# copies it into adapters/ beside a copy of lab.sh, because lab.sh loads
# adapters only from its own directory.
#
# nm-rs is two daemons, both run inside the client namespace's sandbox with
# the same --root ROOT, a directory in the sandbox dir whose run/ and
# var/lib/NetworkManager lead to the sandbox's own /run and state dir (see
# dut_prepare), so nothing outside the sandbox is read or written:
#   nm-system-settings  profiles from ROOT/etc/NetworkManager/system-connections,
#                       on the bus as org.freedesktop.NetworkManagerSystemSettings
#   nm-core             devices and activation, org.freedesktop.NetworkManager;
#                       config ROOT/etc/NetworkManager/nm-rs.toml
# Both use the lab's private system bus (DBUS_SYSTEM_BUS_ADDRESS); its policy
# (lab_dbus_start) lets anyone own any name and call anything, so our
# dbus-policy/ files are not needed there.
# Both run under the one lab_spawn name "dut" (one wrapper shell that starts
# nm-system-settings, waits for its bus name, then execs nm-core), so the
# lab's cgroup accounting counts the CPU of both, and dut_pids (RSS/PSS)
# lists both.
#
# Profiles mirror adapters/nm.sh, with one difference: this adapter was
# written before nm-rs had DHCP and does not start nm-dhcp-helper, so the
# "DHCP link" profile lab-dhcp is STATIC: 198.18.0.10/24 (inside
# dnsmasq's subnet, outside its pool .100-.250) with the server 198.18.0.1 as
# gateway, which satisfies lab_ready4 (address + default route). IPv6 is
# "auto" as for NetworkManager (nm-rs leaves SLAAC to the kernel). In
# MODE=scale every scale link gets the static /30 the peers get.
#
# Knobs: NM_RS_BIN_DIR (directory of the two binaries; default: from PATH),
#        NMRS_LOG (NM_RS_LOG filter for both daemons, default info),
#        NMCLI (default nmcli).
# Written to work under `set -u`, but does not set it: it is sourced into the
# peer scripts, which are not.

DUT_NAME=nmrs
NMRS_BIN_DIR=${NM_RS_BIN_DIR:-}
NMRS_LOG=${NMRS_LOG:-info}
NMCLI=${NMCLI:-nmcli}
NMRS_SETTINGS_NAME=org.freedesktop.NetworkManagerSystemSettings
NMRS_DHCP_ADDR=198.18.0.10/24   # static stand-in for the DHCP lease
DUT_SB=
NMRS_ROOT=

# nmrs_bin NAME: the binary's path (NM_RS_BIN_DIR/NAME or NAME from PATH)
nmrs_bin() {
  if [[ -n $NMRS_BIN_DIR ]]; then echo "$NMRS_BIN_DIR/$1"; else command -v "$1"; fi
}

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
  nmrs_profile "$conns/lab-dhcp.nmconnection" lab-dhcp 6c61622d-6468-4370-8000-000000000001 "$LAB_CLI_IF" \
    "method=manual
address1=$NMRS_DHCP_ADDR,$LAB_SRV_V4" \
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

# The wrapper run as "dut" in the sandbox: nm-system-settings in the
# background, then (once it owns its name, so that nm-core's first profile
# list is complete and "startup complete" means something) exec nm-core, which
# keeps the recorded PID. gdbus wait follows NameOwnerChanged (no polling).
# The settings daemon's PID goes to $LAB_WORK/nmrs-settings.pid for dut_stop.
NMRS_WRAPPER='
set -u
settings=$1 core=$2 root=$3 pidfile=$4
"$settings" --root "$root" &
echo "$! $(awk "{print \$22}" /proc/$!/stat)" > "$pidfile"
if ! gdbus wait --system --timeout 60 '"$NMRS_SETTINGS_NAME"'; then
  echo "nmrs adapter: nm-system-settings never owned its name" >&2
  kill -TERM $! 2>/dev/null
  exit 1
fi
exec "$core" --root "$root"
'

dut_start() {
  local settings core
  settings=$(nmrs_bin nm-system-settings) && core=$(nmrs_bin nm-core) || { lab_log "nmrs: binaries not found"; return 1; }
  [[ -x $settings && -x $core ]] || { lab_log "nmrs: $settings or $core is not executable"; return 1; }
  lab_spawn dut "$LAB_CLI_NS" "$DUT_SB" "$LAB_WORK/dut.log" \
    env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" NM_RS_LOG="$NMRS_LOG" \
    bash -c "$NMRS_WRAPPER" nmrs-dut "$settings" "$core" "$NMRS_ROOT" "$LAB_WORK/nmrs-settings.pid" >/dev/null
}

# PID of nm-system-settings if it is still the process the wrapper started
nmrs_settings_pid() {
  local p s f=$LAB_WORK/nmrs-settings.pid
  [[ -f $f ]] || return 1
  read -r p s < "$f"
  [[ -n ${p:-} && $(lab_pid_start "$p") == "${s:-x}" ]] && echo "$p"
}

dut_stop() {
  local p
  # TERM the settings daemon as well, at once: lab_kill waits (5 s) for the
  # whole cgroup to empty before it KILLs what is left.
  p=$(nmrs_settings_pid) && kill -TERM "$p" 2>/dev/null
  lab_kill dut
  p=$(nmrs_settings_pid) && kill -KILL "$p" 2>/dev/null
  rm -f "$LAB_WORK/nmrs-settings.pid"
  return 0
}

# Both daemons (the cgroup holds exactly them once gdbus has exited).
dut_pids() {
  local pids
  pids=$(lab_cg_pids dut)
  if [[ -z $pids ]]; then pids="$(lab_pid dut) $(nmrs_settings_pid)"; fi
  echo $pids
}

nmrs_cli() { lab_in dut env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" "$NMCLI" "$@"; }
dut_down() { nmrs_cli connection down lab-dhcp >/dev/null; }
dut_up() { nmrs_cli connection up lab-dhcp >/dev/null; }
dut_query() { nmrs_cli general >/dev/null; }
dut_settled() { lab_in dut env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" nm-online -s -q -t 0 >/dev/null 2>&1; }
# single D-Bus round trip into nm-core (no object-tree download like nmcli)
dut_query_light() {
  lab_in dut busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" get-property org.freedesktop.NetworkManager \
    /org/freedesktop/NetworkManager org.freedesktop.NetworkManager State >/dev/null
}
