#!/usr/bin/env bash
# Builds the Debian package (debian/) with dpkg-buildpackage -us -uc -b and
# puts tandem_<version>_<arch>.deb (with its .buildinfo and .changes) into
# build/package/ (PACKAGE_OUT to change), named on the last line.
#
# The tree is copied (tracked and untracked files that git does not ignore,
# so uncommitted work is packaged too) to a fixed directory,
# ${TMPDIR:-/tmp}/tandem-package, because dpkg-buildpackage writes its
# results beside the source; a fixed path keeps ccache's hits across runs.
# Only the tandem binary is built (not the tests), with ccache when present.
# Needs the build dependencies of debian/control (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="${PACKAGE_OUT:-$ROOT/build/package}"
WORK="${TMPDIR:-/tmp}/tandem-package"
VERSION=$(dpkg-parsechangelog -S Version)

# The commit for `tandem --version` (the copy has no .git).
TANDEM_GIT_COMMIT=unknown
if git rev-parse --git-dir >/dev/null 2>&1; then
  TANDEM_GIT_COMMIT=$(git rev-parse --short=12 HEAD)
  [ -z "$(git status --porcelain --untracked-files=no)" ] || TANDEM_GIT_COMMIT+="-dirty"
fi
export TANDEM_GIT_COMMIT

rm -rf "$WORK"
mkdir -p "$WORK/tandem-$VERSION" "$OUT"
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z -co --exclude-standard | grep -zv '^build' |
    tar -c --null -T - | tar -x -C "$WORK/tandem-$VERSION"
else
  tar -c --exclude=./build --exclude=./build-deb . | tar -x -C "$WORK/tandem-$VERSION"
fi

# debhelper (compat 13) points HOME at a private directory: name ccache's
# own cache so the package build shares it.
if command -v ccache >/dev/null; then
  CCACHE_DIR=$(ccache -k cache_dir)
  export CCACHE_DIR
fi
export DEB_BUILD_OPTIONS="noautodbgsym nocheck parallel=${JOBS:-$(nproc)} ${DEB_BUILD_OPTIONS:-}"

(cd "$WORK/tandem-$VERSION" && dpkg-buildpackage -us -uc -b)
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
for f in "tandem_${VERSION}_${ARCH}.deb" "tandem_${VERSION}_${ARCH}.buildinfo" \
         "tandem_${VERSION}_${ARCH}.changes"; do
  mv -f "$WORK/$f" "$OUT/"
done
rm -rf "$WORK"
echo "package: $OUT/tandem_${VERSION}_${ARCH}.deb"
