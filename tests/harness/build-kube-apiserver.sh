#!/usr/bin/env bash
# Obtains the binaries the integration tests run: etcd (Debian's etcd-server) and kube-apiserver,
# built once from Debian's `kubernetes` source package (1.20.2) and cached under
# ~/.cache/eks-iam-sync/bin. Idempotent: a second run with both binaries present does nothing.
set -euo pipefail

cache="${EKS_IAM_SYNC_CACHE:-$HOME/.cache/eks-iam-sync}"
bin="$cache/bin"
mkdir -p "$bin"
say() { printf '[kube-binaries] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

have_etcd() { command -v etcd >/dev/null 2>&1 || [ -x "$bin/etcd" ]; }
have_apiserver() {
  [ -x "$bin/kube-apiserver" ] || command -v kube-apiserver >/dev/null 2>&1 ||
    { [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]; }
}

if have_etcd && have_apiserver; then
  say "etcd and kube-apiserver present; nothing to do"
  exit 0
fi

sources=/etc/apt/sources.list.d/eks-iam-sync-src.sources
if [ ! -f "$sources" ]; then
  say "adding a deb-src source for bookworm main"
  as_root tee "$sources" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
say "apt-get update"
as_root apt-get update -qq
say "installing golang-go rsync etcd-server dpkg-dev"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go rsync etcd-server dpkg-dev >/dev/null
# Debian starts an etcd service on install; the tests start their own on free ports.
as_root systemctl disable --now etcd >/dev/null 2>&1 || as_root service etcd stop >/dev/null 2>&1 || true

if ! have_apiserver; then
  work="$cache/build"
  rm -rf "$work"
  mkdir -p "$work"
  cd "$work"
  say "apt-get source kubernetes (1.20.x, vendor/ included)"
  apt-get source -qq --download-only kubernetes >/dev/null
  dpkg-source --no-check -x ./kubernetes_*.dsc src >/dev/null
  cd src
  mkdir -p .go/src/k8s.io
  ln -sfn ../../.. .go/src/k8s.io/kubernetes
  say "building kube-apiserver (about 7 minutes on 2 cores)"
  start=$(date +%s)
  GOPATH="$PWD/.go" CGO_ENABLED=0 GOFLAGS= make WHAT=cmd/kube-apiserver >build.log 2>&1 || {
    tail -n 40 build.log >&2
    say "build failed"
    exit 1
  }
  built=$(find _output -type f -name kube-apiserver -perm -u+x | head -n 1)
  install -m 0755 "$built" "$bin/kube-apiserver"
  say "built in $(( $(date +%s) - start )) s -> $bin/kube-apiserver"
  cd "$cache"
  rm -rf "$work"
fi
say "ready: $("$bin/kube-apiserver" --version 2>/dev/null || kube-apiserver --version)"
