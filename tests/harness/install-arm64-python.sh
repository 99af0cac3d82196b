#!/usr/bin/env bash
# The arm64 Lambda zip's interpreter on this x86_64 host: Debian's qemu-user (qemu-aarch64) and a small
# aarch64 sysroot holding Debian trixie's CPython 3.13 (the python3.13 runtime's version) and the libraries it
# loads, cached under ~/.cache/eks-iam-sync/arm64/sysroot. tests/integration/test_package.py imports the arm64
# zip with it: qemu-aarch64 -L <sysroot> <sysroot>/usr/bin/python3.13.
# The packages are fetched with apt-get download through apt state of this script's own (a sources file, lists
# and cache in a scratch folder, removed afterwards): the host's sources and package lists are not touched,
# nothing of arm64 is installed on the host. dpkg-deb -x unpacks them; the standard library is compiled once
# by the aarch64 interpreter itself (as Debian's postinst would), so that each run does not compile it again.
# Idempotent: nothing to do when qemu-aarch64 is installed and the sysroot answers. As root or through sudo.
set -euo pipefail

cache="${EKS_IAM_SYNC_CACHE:-$HOME/.cache/eks-iam-sync}"
home="$cache/arm64"
sysroot="$home/sysroot"
version=3.13
suite=trixie
# python3.13-minimal and libpython3.13-stdlib are the interpreter and its standard library (ssl, ctypes, zlib,
# sqlite3, ...); apt resolves what they depend on (libc6, libssl3t64, zlib1g, libffi8, libexpat1, ...).
roots=("python$version-minimal" "libpython$version-stdlib")

say() { printf '[arm64-python] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

qemu() { command -v qemu-aarch64 || command -v qemu-aarch64-static; }
probe="import ssl, ctypes, zlib, json, platform, sys; print(platform.machine(), '%d.%d' % sys.version_info[:2])"
answers() {
  local q
  q=$(qemu) || return 1
  [ -f "$sysroot/.complete" ] || return 1
  [ "$("$q" -L "$sysroot" "$sysroot/usr/bin/python$version" -I -c "$probe" 2>/dev/null)" = "aarch64 $version" ]
}

if answers; then
  say "$(qemu) and $sysroot present; nothing to do"
  exit 0
fi

if ! qemu >/dev/null; then
  say "apt-get update"
  as_root apt-get update -qq
  say "installing qemu-user"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user >/dev/null
fi
q=$(qemu)

start=$(date +%s)
mkdir -p "$home"
work=$(mktemp -d "$home/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/sources.list.d" "$work/lists/partial" "$work/archives/partial" "$work/debs"
: >"$work/status"
cat >"$work/sources.list.d/$suite-arm64.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Architectures: arm64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_private=(
  -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/sources.list.d"
  -o "Dir::State::Lists=$work/lists" -o "Dir::State::Status=$work/status" -o "Dir::Cache=$work"
  -o "Dir::Cache::archives=$work/archives" -o "APT::Architecture=arm64" -o "APT::Architectures::=arm64"
  -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1"
)
say "apt-get update ($suite arm64, in $work)"
apt-get "${apt_private[@]}" update -qq
# What installing the roots on an empty arm64 system would install: the interpreter's dependency closure.
mapfile -t packages < <(apt-get "${apt_private[@]}" -s --no-install-recommends install "${roots[@]}" | awk '/^Inst /{print $2}')
[ "${#packages[@]}" -gt 2 ] || { say "apt resolved no packages for ${roots[*]}"; exit 1; }
say "apt-get download ${packages[*]}"
(cd "$work/debs" && apt-get "${apt_private[@]}" download -qq "${packages[@]}")

new="$work/sysroot"
mkdir -p "$new"
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$new"; done
# Debian's merged /usr: the ELF interpreter is /lib/ld-linux-aarch64.so.1.
for dir in bin lib sbin; do [ -e "$new/$dir" ] || ln -s "usr/$dir" "$new/$dir"; done
rm -rf "$sysroot"
mv "$new" "$sysroot"
# compileall -j fails under qemu-user (its worker pool passes file descriptors): one process per core instead.
jobs=$(nproc)
say "compiling the standard library with the aarch64 interpreter, $jobs processes (about a minute under emulation)"
mapfile -t entries < <(find "$sysroot/usr/lib/python$version" -mindepth 1 -maxdepth 1 ! -name '*-packages' | sort)
pids=()
for ((i = 0; i < jobs; i++)); do
  group=()
  for ((k = i; k < ${#entries[@]}; k += jobs)); do group+=("${entries[k]}"); done
  "$q" -L "$sysroot" "$sysroot/usr/bin/python$version" -I -m compileall -q "${group[@]}" >"$work/compile.$i.log" 2>&1 &
  pids+=("$!")
done
for i in "${!pids[@]}"; do
  wait "${pids[i]}" || { tail -n 20 "$work/compile.$i.log" >&2; say "compileall failed"; exit 1; }
done
(cd "$work/debs" && ls -1 ./*.deb) >"$sysroot/.complete"
answers || { say "$sysroot does not run under $q"; exit 1; }
say "ready in $(($(date +%s) - start)) s: $q -L $sysroot $sysroot/usr/bin/python$version ($("$q" -L "$sysroot" "$sysroot/usr/bin/python$version" -I -c "$probe"))"
