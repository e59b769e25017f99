#!/bin/sh
# A real network file system on one machine, for the sshfs and walkers benchmarks:
# an sshfs mount served by a private sshd that listens on 127.0.0.1 only.
#
#   bench/netfs.sh up EXPORT MOUNTPOINT    serve EXPORT (a local directory) and mount it at MOUNTPOINT
#   bench/netfs.sh down MOUNTPOINT         unmount it; the sshd stops when its last mount is gone
#   bench/netfs.sh stop                    unmount everything this helper mounted and stop the sshd
#   bench/netfs.sh serve                   only the sshd (for the sftp benchmark): prints
#                                          "PORT STATE"; keys and known_hosts are in STATE
#
# What `up` brings up:
# - an sshd (OpenSSH's, started as `sshd -f STATE/sshd_config`) on 127.0.0.1:NETFS_PORT (2222),
#   IPv4 loopback only, with its own config, host key, client key, authorized_keys, known_hosts,
#   pid file and log, all in NETFS_STATE (/run/tandem-netfs); nothing in /etc/ssh or ~/.ssh is
#   read or changed. Key login as root only, no passwords, no TTY, no forwarding: the session
#   is good for the sftp subsystem and little else. The system's own sshd is not touched.
# - an sshfs mount of EXPORT at MOUNTPOINT through that sshd, with attribute, entry and
#   directory caching off, so every stat is a network round trip (as on a busy NFS/SMB share).
#   Mind: sshfs reports mtimes in whole seconds.
# `down`/`stop` undo it; NETFS_STATE (on tmpfs) keeps the keys for the next `up`.
#
# Needs root and /dev/fuse. Installs, if missing, the Debian packages openssh-server and sshfs
# (apt-get); their own services are kept from starting during the install (policy-rc.d), so the
# only server this brings up is the loopback one above.
set -eu
STATE=${NETFS_STATE:-/run/tandem-netfs}
PORT=${NETFS_PORT:-2222}
SFTP_SERVER=/usr/lib/openssh/sftp-server

die() { echo "netfs.sh: $*" >&2; exit 1; }

install_missing() {
  command -v sshfs >/dev/null 2>&1 && [ -x /usr/sbin/sshd ] && [ -x "$SFTP_SERVER" ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "sshfs/openssh-server missing and no apt-get"
  echo "netfs.sh: installing openssh-server sshfs (apt-get)" >&2
  guard=
  if ! [ -e /usr/sbin/policy-rc.d ]; then  # keep the package's sshd (port 22, all addresses) off
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1
  fi
  apt-get update -qq || echo "netfs.sh: apt-get update failed; trying to install anyway" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server sshfs >/dev/null || rc=$?
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
  [ -z "${rc:-}" ] || die "apt-get install failed ($rc)"
}

sshd_running() {
  [ -f "$STATE/sshd.pid" ] && pid=$(cat "$STATE/sshd.pid") && [ -n "$pid" ] &&
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$STATE/sshd_config"
}

stop_sshd() {
  if sshd_running; then kill "$(cat "$STATE/sshd.pid")" 2>/dev/null || true; fi
  rm -f "$STATE/sshd.pid"
}

# The sshfs mounts this helper made (one absolute path a line) that are still mounted.
our_mounts() {
  [ -f "$STATE/mounts" ] || return 0
  while IFS= read -r m; do
    awk -v m="$m" '$2 == m && $3 == "fuse.sshfs" { found = 1 } END { exit !found }' /proc/mounts && echo "$m"
  done < "$STATE/mounts"
}

unmount() {  # only an sshfs mount, never whatever else sits at that path
  if awk -v m="$1" '$2 == m && $3 == "fuse.sshfs" { found = 1 } END { exit !found }' /proc/mounts; then
    fusermount3 -u "$1" 2>/dev/null || fusermount -u "$1" 2>/dev/null || umount "$1"
  fi
  if [ -f "$STATE/mounts" ]; then
    grep -vxF "$1" "$STATE/mounts" > "$STATE/mounts.new" || true
    mv "$STATE/mounts.new" "$STATE/mounts"
  fi
}

start_sshd() {
  mkdir -p /run/sshd  # OpenSSH's privilege-separation directory
  [ -f "$STATE/host" ] || ssh-keygen -q -t ed25519 -N '' -f "$STATE/host" -C tandem-netfs-host
  [ -f "$STATE/id" ] || ssh-keygen -q -t ed25519 -N '' -f "$STATE/id" -C tandem-netfs
  cp "$STATE/id.pub" "$STATE/authorized_keys"
  printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$STATE/host.pub")" > "$STATE/known_hosts"
  chmod 600 "$STATE/authorized_keys" "$STATE/known_hosts"
  cat > "$STATE/sshd_config" <<EOC
Port $PORT
AddressFamily inet
ListenAddress 127.0.0.1
HostKey $STATE/host
PidFile $STATE/sshd.pid
AuthorizedKeysFile $STATE/authorized_keys
AllowUsers root
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitTTY no
DisableForwarding yes
PermitUserEnvironment no
Subsystem sftp $SFTP_SERVER
EOC
  /usr/sbin/sshd -t -f "$STATE/sshd_config" || die "sshd rejects $STATE/sshd_config"
  /usr/sbin/sshd -f "$STATE/sshd_config" -E "$STATE/sshd.log" ||
    die "sshd did not start (port $PORT taken? set NETFS_PORT); see $STATE/sshd.log"
  i=0
  until sshd_running; do
    i=$((i + 1)); [ $i -lt 50 ] || die "sshd did not come up; see $STATE/sshd.log"
    sleep 0.1
  done
}

case "${1:-}" in
up)
  [ $# -eq 3 ] || { echo "usage: $0 up EXPORT MOUNTPOINT" >&2; exit 2; }
  [ "$(id -u)" = 0 ] || die "needs root"
  [ -e /dev/fuse ] || die "no /dev/fuse"
  install_missing
  export_dir=$(readlink -f "$2"); [ -d "$export_dir" ] || die "$2: not a directory"
  mkdir -p "$3"; mnt=$(readlink -f "$3")
  mkdir -p "$STATE"; chmod 700 "$STATE"
  sshd_running || start_sshd
  # -F /dev/null: ssh would otherwise read the passwd home's ~/.ssh/config, whatever $HOME says.
  sshfs -F /dev/null -p "$PORT" \
    -o "dir_cache=no,attr_timeout=0,entry_timeout=0,negative_timeout=0" \
    -o "IdentityFile=$STATE/id,IdentitiesOnly=yes,UserKnownHostsFile=$STATE/known_hosts,StrictHostKeyChecking=yes,BatchMode=yes" \
    "root@127.0.0.1:$export_dir" "$mnt"
  echo "$mnt" >> "$STATE/mounts"
  echo "sshfs: $export_dir on $mnt (sshd on 127.0.0.1:$PORT)"
  ;;
down)
  [ $# -eq 2 ] || { echo "usage: $0 down MOUNTPOINT" >&2; exit 2; }
  mnt=$(readlink -f "$2" 2>/dev/null || echo "$2")
  unmount "$mnt"
  [ -n "$(our_mounts)" ] || stop_sshd
  ;;
stop)
  for m in $(our_mounts); do unmount "$m"; done
  rm -f "$STATE/mounts"
  stop_sshd
  ;;
serve)
  [ "$(id -u)" = 0 ] || die "needs root"
  install_missing
  mkdir -p "$STATE"; chmod 700 "$STATE"
  sshd_running || start_sshd
  echo "$PORT $STATE"
  ;;
*) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
