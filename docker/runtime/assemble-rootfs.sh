#!/usr/bin/env bash
# Assembles a distroless-style root filesystem from Debian packages (run inside a Debian 12 build
# stage, as root).
#
#   assemble-rootfs.sh ROOTFS PACKAGE...                 a complete root file system
#
# Each package is unpacked with dpkg-deb (no maintainer script runs: none is needed for these
# libraries), then trimmed of what a service never reads (docs except copyright files, man pages,
# translations, executables, iconv modules). As distroless does, every package keeps its dpkg
# metadata in /var/lib/dpkg/status.d/NAME (its control stanza) and NAME.md5sums (the files that
# remain), so that scanners such as Trivy see the OS packages and their versions.
set -euo pipefail
rootfs=${1:?usage: assemble-rootfs.sh ROOTFS PACKAGE...}
shift
work=$(mktemp -d)
cd "$work"
# The multiarch folder of this build stage's libraries: x86_64-linux-gnu, aarch64-linux-gnu...
multiarch=$(dpkg-query -L libc6 | sed -nE 's#^/(usr/)?lib/([^/]+-linux-gnu[^/]*)/libc\.so\.6$#\2#p' | head -n 1)
[[ -n $multiarch ]] || { echo "assemble-rootfs: cannot tell the multiarch folder" >&2; exit 1; }

packages=("$@")

# Merged /usr, as in Debian 12 (/lib64/ld-linux-x86-64.so.2 resolves through the link).
install -d -m 0755 "$rootfs"/usr/{bin,sbin,lib,lib64} "$rootfs"/etc "$rootfs"/var/lib/dpkg/status.d
for dir in bin sbin lib lib64; do ln -sfn "usr/$dir" "$rootfs/$dir"; done

apt-get download -o APT::Sandbox::User=root "${packages[@]}" >/dev/null
for deb in ./*.deb; do
  dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$rootfs"
done

# Trim: legal copyright files stay; nothing here runs a program other than the service.
# libmvec (glibc's vector math, 1 MB) is loaded only by programs linked with -lmvec: neither the
# service nor the backtracer nor their libraries are. usr/share/gcc holds libstdc++'s gdb printers.
rm -rf "$rootfs"/usr/share/{man,info,lintian,locale,doc-base,bug,gdb,gcc,bash-completion} \
  "$rootfs"/usr/share/ca-certificates "$rootfs/usr/lib/$multiarch/gconv" \
  "$rootfs/usr/lib/$multiarch"/libmvec.so* \
  "$rootfs/usr/lib/$multiarch/audit" "$rootfs"/usr/libexec "$rootfs"/etc/ca-certificates \
  "$rootfs"/etc/update-motd.d "$rootfs"/etc/profile.d "$rootfs"/etc/skel
if [[ -d "$rootfs"/usr/share/doc ]]; then
  find "$rootfs"/usr/share/doc -type f ! -name copyright -delete
  find "$rootfs"/usr/share/doc -mindepth 1 -type d -empty -delete
fi
find "$rootfs"/usr/bin "$rootfs"/usr/sbin -mindepth 1 -delete
find "$rootfs"/etc -name '*.sh' -delete

# dpkg metadata per package, as distroless keeps it.
for deb in ./*.deb; do
  name=$(dpkg-deb --field "$deb" Package)
  dpkg-deb --field "$deb" | awk '{ print } /^Package:/ { print "Status: install ok installed" }' \
    >"$rootfs/var/lib/dpkg/status.d/$name"
  if dpkg-deb --ctrl-tarfile "$deb" | tar -x ./md5sums 2>/dev/null; then
    while read -r sum path; do
      if [[ -f "$rootfs/$path" && ! -L "$rootfs/$path" ]]; then printf '%s  %s\n' "$sum" "$path"; fi
    done <md5sums >"$rootfs/var/lib/dpkg/status.d/$name.md5sums"
    rm -f md5sums
  fi
  printf 'assemble-rootfs: %s %s\n' "$name" "$(dpkg-deb --field "$deb" Version)"
done
chmod 0644 "$rootfs"/var/lib/dpkg/status.d/*

# What maintainer scripts would have produced: the CA bundle (update-ca-certificates ran in this
# build stage), the UTC zone, the dynamic linker cache.
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
ln -sfn /usr/share/zoneinfo/Etc/UTC "$rootfs/etc/localtime"
echo 'Etc/UTC' >"$rootfs/etc/timezone"
echo 'include /etc/ld.so.conf.d/*.conf' >"$rootfs/etc/ld.so.conf"
ldconfig -r "$rootfs"
rm -rf "$rootfs"/var/cache/ldconfig

# Users and groups: root, nobody and the service user code (1001:1001). No login shell exists.
cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
code:x:1001:1001:CODE services:/home/code:/sbin/nologin
PASSWD
cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
code:x:1001:
GROUP
cat >"$rootfs/etc/nsswitch.conf" <<'NSS'
passwd:    files
group:     files
shadow:    files
hosts:     files dns
networks:  files
protocols: files
services:  files
ethers:    files
rpc:       files
NSS
chmod 0644 "$rootfs"/etc/{passwd,group,nsswitch.conf,timezone,ld.so.conf}
install -d -m 0700 "$rootfs/root"
install -d -m 0700 -o 1001 -g 1001 "$rootfs/home/code"
install -d -m 1777 "$rootfs/tmp"

rm -rf "$work"
