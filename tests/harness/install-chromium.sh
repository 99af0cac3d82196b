#!/usr/bin/env bash
# Installs the browser the report's browser tests drive: Debian's headless-capable `chromium`
# (/usr/bin/chromium), with fonts for readable screenshots. Idempotent: nothing to do when present.
# As root, or through sudo, like tests/harness/build-kube-apiserver.sh. A test tool's own browser
# download (`playwright install`) does not work on every machine; Playwright drives this one.
set -euo pipefail

say() { printf '[chromium] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

browser="${EKS_IAM_SYNC_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$browser" ] && fc-list 2>/dev/null | grep -qi 'dejavu\|liberation'; then
  say "$browser present; nothing to do"
  exit 0
fi

say "apt-get update"
as_root apt-get update -qq
say "installing chromium fonts-liberation fonts-dejavu-core"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  chromium fonts-liberation fonts-dejavu-core fontconfig >/dev/null
say "ready: $("$browser" --version 2>/dev/null || echo "$browser")"
