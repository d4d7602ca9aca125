#!/bin/sh
# Prints framesend's version, which is also its Debian package version, so
# `framesend --version` and `dpkg -s framesend` say the same thing.
#
#   tag v1.2.3                      -> 1.2.3
#   4 commits after v1.2.3          -> 1.2.3+git4.1a2b3c4   (after 1.2.3, before 1.2.4)
#   tag v1.3.0-rc1                  -> 1.3.0~rc1            (before 1.3.0)
#   no tag (a fresh or shallow clone without tags)
#                                   -> 0.0.0~git20261129.022410.1a2b3c4
#     the commit's UTC date and time, then its hash: later commits sort
#     higher, and any tagged release sorts above every untagged build.
#   uncommitted changes             -> the above with +dirty
# A version given to make (make deb VERSION=…) wins over all of this.
set -eu
cd "$(dirname "$0")/.."

if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	echo 0.0.0~unknown
	exit 0
fi
if desc=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	v=$(printf '%s\n' "$desc" | sed -E 's/^v//; s/-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/; s/-/~/g')
else
	when=$(TZ=UTC git show -s --date=format-local:%Y%m%d.%H%M%S --format=%cd HEAD)
	v="0.0.0~git$when.$(git rev-parse --short=7 HEAD)"
fi
if ! git diff --quiet HEAD -- 2>/dev/null; then
	v="$v+dirty"
fi
echo "$v"
