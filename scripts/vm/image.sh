#!/usr/bin/env bash
# Builds the Debian 12 node image the VM end-to-end run boots (scripts/vm-e2e.sh), offline from
# this machine's own Debian apt sources, without loop devices, and caches it by its recipe's hash:
#
#   scripts/vm/image.sh CACHE_DIR      prints the path of box.img (qcow2), building it if missing
#   scripts/vm/image.sh --hash         prints the recipe's hash only
#
# The recipe is this file, the apt sources it is given and Vagrant's insecure public key: change
# any and the hash changes. Steps: mmdebstrap a tree (kernel, GRUB, systemd, openssh, sudo, the
# tools the plugin needs, containerd), make it a Vagrant box's system (a `vagrant` user with the
# insecure key and passwordless sudo, eth0 by DHCP under systemd-networkd), then a raw disk: an
# MBR label by sfdisk, an ext4 built from the tree by `mkfs.ext4 -d`, written in by dd; then one
# boot under QEMU (TCG, the tree's own kernel) whose init installs GRUB on the disk and powers
# off; then qcow2. Run as root.
set -euo pipefail
# Only the image's path goes to stdout (fd 3); everything else, tools' chatter included, to stderr.
exec 3>&1 1>&2
SELF=$(readlink -f "$0")
SOURCES=${VNET_VM_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
VAGRANT_PUBKEY=${VNET_VM_VAGRANT_PUBKEY:-$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -1)}
DISK_GB=6
PACKAGES=(
  linux-image-amd64 grub-pc systemd-sysv udev dbus kmod procps openssh-server sudo
  # what the plugin needs on a node, and what the checks use
  iproute2 util-linux nftables iptables iputils-ping jq libstdc++6
  # a container runtime, configured for CNI by provision.sh, and the reference plugins (portmap)
  containerd containernetworking-plugins
  rsync less
)

recipe_hash() {
  [ -f "$SOURCES" ] || { echo "image.sh: no apt sources at $SOURCES" >&2; exit 1; }
  [ -f "$VAGRANT_PUBKEY" ] || { echo "image.sh: Vagrant's insecure public key not found (apt-get install vagrant)" >&2; exit 1; }
  cat "$SELF" "$SOURCES" "$VAGRANT_PUBKEY" | sha256sum | cut -c1-16
}

if [ "${1:-}" = --hash ]; then recipe_hash >&3; exit 0; fi
[ $# = 1 ] || { sed -n '2,13p' "$SELF" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "image.sh: run as root" >&2; exit 1; }
HASH=$(recipe_hash)
OUT="$1/image-$HASH"
if [ -f "$OUT/box.img" ] && [ -f "$OUT/done" ]; then
  echo "image.sh: cached $OUT/box.img" >&2
  echo "$OUT/box.img" >&3
  exit 0
fi
for t in mmdebstrap sfdisk mkfs.ext4 qemu-system-x86_64 qemu-img; do
  command -v "$t" >/dev/null || { echo "image.sh: $t is missing (apt-get install mmdebstrap fdisk e2fsprogs qemu-system-x86 qemu-utils)" >&2; exit 1; }
done

WORK="$1/build-$HASH.$$"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
rm -rf "$1"/build-"$HASH".* # an interrupted build's leftovers
mkdir -p "$WORK" "$OUT"
ROOT="$WORK/root"
UUID=$(cat /proc/sys/kernel/random/uuid)

t0=$(date +%s)
echo "image.sh: mmdebstrap bookworm (${#PACKAGES[@]} packages and their dependencies) from $SOURCES" >&2
mmdebstrap --mode=root --variant=apt --format=directory --quiet \
  --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  bookworm "$ROOT" "$SOURCES" >&2
echo "image.sh: tree done in $(( $(date +%s) - t0 ))s" >&2

# --- the system of a Vagrant box ---
echo "grub-pc grub-pc/install_devices multiselect /dev/vda" | chroot "$ROOT" debconf-set-selections
echo vnet-node > "$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tvnet-node\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$UUID" > "$ROOT/etc/fstab"
chroot "$ROOT" useradd -m -s /bin/bash -U vagrant
echo 'vagrant:vagrant' | chroot "$ROOT" chpasswd
install -d -m 0700 -o 1000 -g 1000 "$ROOT/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$VAGRANT_PUBKEY" "$ROOT/home/vagrant/.ssh/authorized_keys"
[ "$(stat -c %u "$ROOT/home/vagrant")" = 1000 ] || { echo "image.sh: the vagrant user is not uid 1000" >&2; exit 1; }
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' > "$ROOT/etc/sudoers.d/vagrant"
chmod 0440 "$ROOT/etc/sudoers.d/vagrant"
printf 'UseDNS no\n' > "$ROOT/etc/ssh/sshd_config.d/vagrant.conf"
# Each VM gets its own host keys on its first boot.
rm -f "$ROOT"/etc/ssh/ssh_host_*
cat > "$ROOT/etc/systemd/system/ssh-host-keys.service" <<'EOF'
[Unit]
Description=Generate SSH host keys on first boot
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
EOF
# eth0 (Vagrant's management NIC) by DHCP; Vagrant writes eth1's file for the private network.
cat > "$ROOT/etc/systemd/network/10-eth0.network" <<'EOF'
[Match]
Name=eth0
[Network]
DHCP=ipv4
EOF
chroot "$ROOT" systemctl enable -q ssh-host-keys.service systemd-networkd.service
chroot "$ROOT" systemctl disable -q systemd-networkd-wait-online.service 2>/dev/null || true
chroot "$ROOT" systemctl mask -q apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer 2>/dev/null || true
cat > "$ROOT/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="net.ifnames=0 biosdevname=0 console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF
# The first boot's init: GRUB onto the disk, then power off (no systemd, no network).
cat > "$ROOT/usr/local/sbin/vnet-image-firstboot" <<'EOF'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
if grub-install --target=i386-pc /dev/vda && update-grub; then echo VNET-IMAGE-GRUB-OK; else echo VNET-IMAGE-GRUB-FAILED; fi
rm -f /usr/local/sbin/vnet-image-firstboot
sync; mount -o remount,ro / ; sync
echo o > /proc/sysrq-trigger
# Wait with builtins only: the power-off takes the disk away first, and an external `sleep` read
# from it then fails, init exits, and the kernel panics (panic=-1 below makes even that an exit).
while :; do :; done
EOF
chmod 0755 "$ROOT/usr/local/sbin/vnet-image-firstboot"
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/log/*.log "$ROOT"/tmp/* "$ROOT"/etc/machine-id
: > "$ROOT/etc/machine-id" # systemd makes one on each VM's first boot
cp "$ROOT"/boot/vmlinuz-* "$WORK/vmlinuz"
cp "$ROOT"/boot/initrd.img-* "$WORK/initrd.img"

# --- the disk: MBR, one bootable ext4 partition from 1 MiB, no loop device ---
t1=$(date +%s)
truncate -s "${DISK_GB}G" "$WORK/disk.raw"
echo 'label: dos
start=2048, type=83, bootable' | sfdisk --quiet "$WORK/disk.raw"
part_bytes=$(( DISK_GB * 1024 * 1024 * 1024 - 1024 * 1024 ))
mkfs.ext4 -q -F -U "$UUID" -L root -d "$ROOT" "$WORK/part.raw" "$(( part_bytes / 1024 ))k"
dd if="$WORK/part.raw" of="$WORK/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$WORK/part.raw"
echo "image.sh: disk written in $(( $(date +%s) - t1 ))s" >&2

# --- first boot: GRUB ---
t2=$(date +%s)
timeout 900 qemu-system-x86_64 -machine pc,accel=tcg -cpu qemu64 -m 1024 -smp 1 -nographic -no-reboot \
  -drive "file=$WORK/disk.raw,format=raw,if=virtio" -net none \
  -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
  -append "root=UUID=$UUID rw console=ttyS0 init=/usr/local/sbin/vnet-image-firstboot quiet panic=-1" \
  </dev/null >"$WORK/firstboot.log" 2>&1 || true
if ! grep -q VNET-IMAGE-GRUB-OK "$WORK/firstboot.log"; then
  echo "image.sh: the first boot did not install GRUB; its console:" >&2
  tail -40 "$WORK/firstboot.log" >&2
  exit 1
fi
echo "image.sh: GRUB installed by the first boot in $(( $(date +%s) - t2 ))s" >&2
qemu-img convert -O qcow2 "$WORK/disk.raw" "$OUT/box.img.tmp"
mv "$OUT/box.img.tmp" "$OUT/box.img"
echo "$DISK_GB" > "$OUT/virtual_size"
date -u +%FT%TZ > "$OUT/done"
# Older recipes' images are of no use any more.
for old in "$1"/image-*; do [ "$old" = "$OUT" ] || { rm -rf "$old"; echo "image.sh: removed the outdated $old" >&2; }; done
echo "image.sh: built $OUT/box.img ($(du -m "$OUT/box.img" | cut -f1) MiB) in $(( $(date +%s) - t0 ))s" >&2
echo "$OUT/box.img" >&3
