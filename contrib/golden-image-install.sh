#!/bin/bash
# Russet golden image installer: deploy it to Macs (Jamf/Munki/launchd, or a Russet-delivered
# script) to download, verify and register the corporate VM image Russet assigned to this Mac.
#
# Russet delivers, per Mac and for its architecture, the managed preferences of the domain
# `org.russet.golden-image` (README, "Golden images"): Name, Description, URL, SHA256,
# Architecture (arm64 | x86_64). macOS writes them to
# /Library/Managed Preferences/org.russet.golden-image.plist. This script:
#   1. reads them (PlistBuddy on macOS; python3's plistlib elsewhere),
#   2. refuses an image for another architecture,
#   3. downloads the image into the cache (resuming a partial download), unless a verified
#      copy is already there,
#   4. checks its SHA-256 and deletes it on a mismatch,
#   5. unpacks it (.zip, .tar, .tar.gz/.tgz; a .pvm bundle or .pvmp is used as it is) and
#      registers it with Parallels Desktop (`prlctl register`), unless --no-register.
#
# Usage: golden-image-install.sh [--no-register] [--prefs FILE] [--cache DIR]
# Environment: RUSSET_GOLDEN_PREFS, RUSSET_GOLDEN_CACHE (the same as --prefs, --cache).
# Exit codes: 0 done (or nothing assigned), 1 usage or environment, 2 checksum mismatch,
#             3 download failed, 4 wrong architecture, 5 unpack or register failed.
set -euo pipefail

prefs="${RUSSET_GOLDEN_PREFS:-/Library/Managed Preferences/org.russet.golden-image.plist}"
cache="${RUSSET_GOLDEN_CACHE:-/Users/Shared/Russet/golden-images}"
register=1

while [ $# -gt 0 ]; do
  case "$1" in
    --no-register) register=0 ;;
    --prefs) prefs="${2:?--prefs needs a file}"; shift ;;
    --cache) cache="${2:?--cache needs a directory}"; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 1 ;;
  esac
  shift
done

log() { echo "golden-image: $*" >&2; }

if [ ! -f "$prefs" ]; then
  log "no golden image is assigned to this Mac ($prefs is absent)"
  exit 0
fi

# One key of the managed preferences; empty when absent.
key() {
  if [ -x /usr/libexec/PlistBuddy ]; then
    /usr/libexec/PlistBuddy -c "Print :$1" "$prefs" 2>/dev/null || true
  elif command -v python3 >/dev/null 2>&1; then
    python3 - "$prefs" "$1" <<'PY' 2>/dev/null || true
import plistlib, sys
with open(sys.argv[1], "rb") as f:
    value = plistlib.load(f).get(sys.argv[2], "")
print(value if isinstance(value, str) else "")
PY
  else
    log "neither PlistBuddy nor python3 is here to read $prefs"
    exit 1
  fi
}

name=$(key Name)
url=$(key URL)
sha=$(key SHA256 | tr 'A-F' 'a-f')
arch=$(key Architecture)

if [ -z "$url" ] || [ -z "$sha" ]; then
  log "$prefs has no URL or SHA256: nothing to do"
  exit 0
fi
case "$url" in
  http://*|https://*) ;;
  *) log "refusing URL scheme of $url (http or https only)"; exit 1 ;;
esac
if ! printf '%s' "$sha" | grep -Eq '^[0-9a-f]{64}$'; then
  log "SHA256 is not 64 hex characters"
  exit 1
fi
machine=$(uname -m)
if [ -n "$arch" ] && [ "$arch" != "$machine" ]; then
  log "the image \"$name\" is for $arch, this Mac is $machine"
  exit 4
fi

sha256_of() {
  if command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    sha256sum "$1" | cut -d' ' -f1
  fi
}

mkdir -p "$cache"
file="$cache/$(basename "${url%%\?*}")"
stamp="$file.verified"

# A copy verified earlier against this very checksum is used as it is.
if [ -f "$file" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sha" ]; then
  log "\"$name\" is already here and verified: $file"
else
  rm -f "$stamp"
  log "downloading \"$name\" from $url"
  if ! curl --fail --location --silent --show-error --retry 3 --connect-timeout 20 \
      --continue-at - --output "$file" "$url"; then
    # A finished file cannot be resumed (416): start over once.
    rm -f "$file"
    if ! curl --fail --location --silent --show-error --retry 3 --connect-timeout 20 \
        --output "$file" "$url"; then
      log "download failed: $url"
      exit 3
    fi
  fi
  actual=$(sha256_of "$file")
  if [ "$actual" != "$sha" ]; then
    log "SHA-256 mismatch for $file: expected $sha, got $actual (deleted)"
    rm -f "$file"
    exit 2
  fi
  printf '%s' "$sha" > "$stamp"
  log "verified SHA-256 $sha"
fi

if [ "$register" -eq 0 ]; then
  echo "$file"
  exit 0
fi

# Unpack into a directory of its own and find the VM bundle.
target="$cache/${name//\//_}"
case "$file" in
  *.zip) rm -rf "$target"; mkdir -p "$target"; unzip -q "$file" -d "$target" || exit 5 ;;
  *.tar.gz|*.tgz|*.tar) rm -rf "$target"; mkdir -p "$target"; tar -xf "$file" -C "$target" || exit 5 ;;
  *) target="$file" ;;
esac
vm=$(find "$target" -maxdepth 2 -name '*.pvm' -print -quit 2>/dev/null || true)
vm="${vm:-$target}"
if ! command -v prlctl >/dev/null 2>&1; then
  log "prlctl (Parallels Desktop) is not installed: $vm is ready to register by hand"
  echo "$vm"
  exit 0
fi
if ! prlctl register "$vm"; then
  log "prlctl register $vm failed"
  exit 5
fi
log "registered \"$name\" with Parallels Desktop: $vm"
echo "$vm"
