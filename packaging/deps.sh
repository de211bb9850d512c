#!/usr/bin/env bash
# Installs the Debian packages portier needs that are not installed yet: build ones always,
# test ones with --test. Asks apt only when something is missing.
set -euo pipefail

build_pkgs=(g++ meson ninja-build pkg-config libasio-dev node-llhttp libssl-dev libre2-dev nlohmann-json3-dev doctest-dev libcrypt-dev)
test_pkgs=(curl python3 openssl microsocks)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "portier: installing missing packages: ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
