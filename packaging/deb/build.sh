#!/bin/sh
# Builds dist/framesend_VERSION_ARCH.deb with Debian's dpkg-deb.
#
#   packaging/deb/build.sh ARCH VERSION OUTDIR
#
# ARCH is a Debian architecture: amd64, armhf (GOARM=6: the Pi Zero and 1 as
# well as Raspberry Pi OS and Debian armhf on later boards) or arm64. The
# binary is static (CGO_ENABLED=0), so the package depends on nothing. Files
# go where a distribution package puts them; /etc/default/framesend is a
# conffile. Everything is staged in a temporary directory: nothing in the
# source tree is written but OUTDIR.
set -eu
arch=$1 version=$2 out=$3
src=$(cd "$(dirname "$0")/../.." && pwd)
here=$src/packaging/deb
GO=${GO:-go}

case $arch in
amd64) goarch=amd64 goarm= ;;
armhf) goarch=arm goarm=6 ;;
arm64) goarch=arm64 goarm= ;;
*) echo "build.sh: unknown architecture $arch (amd64, armhf or arm64)" >&2; exit 2 ;;
esac
if command -v dpkg >/dev/null && ! dpkg --validate-version "$version" 2>/dev/null; then
	echo "build.sh: $version is not a valid Debian version (it must start with a digit; letters, digits and . + ~ only)" >&2
	exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
ldflags="-s -w -X main.version=$version"

# The commit's time stamps every file, so the same commit gives the same
# package.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

(cd "$src" && CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
	$GO build -trimpath -ldflags "$ldflags" -o "$root/usr/bin/framesend" ./cmd/framesend)
# The man page and completions come from a binary that runs here.
(cd "$src" && CGO_ENABLED=0 $GO build -trimpath -ldflags "$ldflags" -o "$work/framesend" ./cmd/framesend)

install -d -m755 "$root/usr/lib/udev/rules.d" "$root/usr/lib/systemd/system" \
	"$root/etc/default" "$root/usr/share/man/man1" \
	"$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
	"$root/usr/share/doc/framesend" "$root/usr/share/lintian/overrides" "$root/DEBIAN"
chmod 755 "$root/usr/bin/framesend"
install -m644 "$src/udev/99-framesend.rules" "$root/usr/lib/udev/rules.d/99-framesend.rules"
sed 's|@BINDIR@|/usr/bin|g' "$src/udev/framesend@.service" >"$root/usr/lib/systemd/system/framesend@.service"
install -m644 "$src/udev/framesend.default" "$root/etc/default/framesend"
"$work/framesend" man | gzip -9n >"$root/usr/share/man/man1/framesend.1.gz"
"$work/framesend" completion bash >"$root/usr/share/bash-completion/completions/framesend"
"$work/framesend" completion zsh >"$root/usr/share/zsh/vendor-completions/_framesend"
sh "$here/copyright.sh" "$work/framesend" >"$root/usr/share/doc/framesend/copyright"
install -m644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/framesend"

date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
commit=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
maintainer=$(sed -n 's/^Maintainer: //p' "$here/control")
{
	echo "framesend ($version) unstable; urgency=medium"
	echo
	echo "  * Built from framesend commit $commit; the project's history is its"
	echo "    git log, and the README says what each release brings."
	echo
	echo " -- $maintainer  $date"
} | gzip -9n >"$root/usr/share/doc/framesend/changelog.gz"

find "$root/usr" "$root/etc" -type f -exec chmod 644 {} +
chmod 755 "$root/usr/bin/framesend"

install -m644 "$here/conffiles" "$root/DEBIAN/conffiles"
install -m755 "$here/postinst" "$root/DEBIAN/postinst"
install -m755 "$here/postrm" "$root/DEBIAN/postrm"
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" "$here/control" >"$root/DEBIAN/control"

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb="$out/framesend_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
