#!/usr/bin/env bash
# Builds the Debian package from the tree: build-deb/portier_<version>_<arch>.deb
#
#   packaging/deb.sh                # installs what is missing, release build in build-deb/, package, lintian
#   packaging/deb.sh --no-lintian   # the same without the lintian run at the end
#
# The version is meson.build's project version (a native package). build-deb/ is reused when it
# exists (remove it for a clean build). The package is assembled in build-deb/root/ and built by
# dpkg-deb --root-owner-group: no debhelper, no fakeroot. With lintian (the default) the script
# fails when lintian reports an error (E: line); warnings are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

run_lintian=1
for arg in "$@"; do
  case "$arg" in
    --no-lintian) run_lintian=0 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "deb.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

maintainer="${PORTIER_DEB_MAINTAINER:-portier maintainers <portier@example.org>}"
out=build-deb
root=$out/root

# ---- tools: the build dependencies, and what packaging needs ------------------------------------
packaging/deps.sh
pkg_tools=(dpkg-dev binutils lintian)
missing=()
for p in "${pkg_tools[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "deb.sh: installing missing packages: ${missing[*]}" >&2
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- release build with Debian's hardening flags (once; reused afterwards) ------------------------
if [[ ! -f $out/build.ninja ]]; then
  # Optimisation stays meson's (release, -O3); dpkg-buildflags adds fortify, stack protector,
  # RELRO and BIND_NOW.
  export DEB_BUILD_MAINT_OPTIONS=hardening=+all
  strip_opt() { tr ' ' '\n' | grep -vxE -e '-O[0-9s]?' -e '-g' | tr '\n' ' '; }
  CPPFLAGS=$(dpkg-buildflags --get CPPFLAGS)
  CFLAGS=$(dpkg-buildflags --get CFLAGS | strip_opt)
  CXXFLAGS=$(dpkg-buildflags --get CXXFLAGS | strip_opt)
  LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
  CPPFLAGS=$CPPFLAGS CFLAGS=$CFLAGS CXXFLAGS=$CXXFLAGS LDFLAGS=$LDFLAGS \
    meson setup "$out" --buildtype=release >/dev/null
fi
ninja -C "$out" portier

version=$(meson introspect --projectinfo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
[[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || { echo "deb.sh: unusable version '$version' in meson.build" >&2; exit 1; }
arch=$(dpkg --print-architecture)
deb=$out/portier_${version}_${arch}.deb
# Reproducible timestamps: the last commit's time when this is a git checkout.
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
  SOURCE_DATE_EPOCH=$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
from="the portier source tree"
if commit=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null); then from="$from, commit $commit"; fi

# ---- staged tree ----------------------------------------------------------------------------------
rm -rf "$root"
mkdir -p "$root/DEBIAN"
umask 022
doc=$root/usr/share/doc/portier

install -D -m 0755 "$out/portier" "$root/usr/sbin/portier"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/sbin/portier"

# /etc/portier mirrors rules/, so the relative paths in the examples (../lists/ads.txt,
# ../users.htpasswd.example, ../block.html) resolve as they do in the tree.
etc=$root/etc/portier
install -d -m 0755 "$etc" "$etc/examples" "$etc/lists"
sed -E 's#"access_log": *\{"path": *"-"#"access_log": {"path": "/var/log/portier/access.log"#' \
  rules/portier.json >"$etc/portier.json"
grep -q '"path": "/var/log/portier/access.log"' "$etc/portier.json" \
  || { echo "deb.sh: could not point the access log of rules/portier.json to /var/log/portier" >&2; exit 1; }
chmod 0644 "$etc/portier.json"
install -m 0644 rules/examples/*.json "$etc/examples/"
install -m 0644 rules/lists/* "$etc/lists/"
install -m 0644 rules/block.html rules/users.htpasswd.example "$etc/"

install -D -m 0644 packaging/portier.service "$root/lib/systemd/system/portier.service"
install -D -m 0644 packaging/portier.tmpfiles "$root/usr/lib/tmpfiles.d/portier.conf"
install -D -m 0644 packaging/portier.logrotate "$root/etc/logrotate.d/portier"

install -d -m 0755 "$root/usr/share/man/man8" "$root/usr/share/man/man5"
gzip -9n <packaging/man/portier.8 >"$root/usr/share/man/man8/portier.8.gz"
gzip -9n <packaging/man/portier.json.5 >"$root/usr/share/man/man5/portier.json.5.gz"

install -d -m 0755 "$doc"
install -m 0644 packaging/copyright "$doc/copyright"
gzip -9n <README.md >"$doc/README.md.gz"
gzip -9n <rules/README.md >"$doc/README.rules.md.gz"
{
  echo "portier ($version) unstable; urgency=medium"
  echo
  echo "  * Package built from $from."
  echo "    See /usr/share/doc/portier/README.md.gz."
  echo
  echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$root"/usr/share/man/*/*.gz "$doc"/*.gz

# ---- control files ----------------------------------------------------------------------------------
# Depends from the libraries the binary links (dpkg-shlibdeps wants a debian/control to read).
shl=$(mktemp -d)
trap 'rm -rf "$shl"' EXIT
mkdir -p "$shl/debian"
printf 'Source: portier\n\nPackage: portier\nArchitecture: any\n' >"$shl/debian/control"
bin_abs=$(realpath "$root/usr/sbin/portier")
shlibs=$(cd "$shl" && dpkg-shlibdeps -O "$bin_abs" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[[ -n $shlibs ]] || { echo "deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: portier
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $shlibs, adduser
Suggests: logrotate
Section: net
Priority: optional
Description: HTTP forward and reverse proxy with rules and regional egress
 portier is a fast, strict HTTP/1.1 proxy. Forward listeners proxy plain
 HTTP requests and CONNECT tunnels, with proxy authentication (htpasswd
 users, groups, trusted networks), ordered rules and large domain and regex
 blocklists, a check of the TLS server name of tunnels, and egress through
 regions of HTTP, HTTPS and SOCKS5 parent proxies with sticky sessions and
 failover. Reverse listeners route by host and path to pools of backends,
 with balancing, health checks, TLS termination and WebSocket.
 .
 The whole configuration is one JSON file, /etc/portier/portier.json,
 reloaded on SIGHUP without closing connections. Every request is written
 to a JSON access log. This package runs it as the systemd service
 portier.service, under its own user.
EOF

(cd "$root" && find etc -type f | sort | sed 's#^#/#') >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's#^\./##' | sort | xargs md5sum) \
  >"$root/DEBIAN/md5sums"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

# Reproducible file times.
find "$root" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"

rm -f "$out"/portier_*.deb
dpkg-deb --build --root-owner-group -Zxz "$root" "$deb" >/dev/null
echo "deb.sh: built $deb"

if [[ $run_lintian -eq 1 ]]; then
  lint=$(lintian --allow-root --tag-display-limit 0 "$deb" 2>&1) || true
  [[ -n $lint ]] && echo "$lint"
  if grep -q '^E: ' <<<"$lint"; then
    echo "deb.sh: lintian reports errors" >&2
    exit 1
  fi
  echo "deb.sh: lintian: no errors"
fi
