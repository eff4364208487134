#!/usr/bin/env bash
# Re-vendor the JavaScript of `sbts serve` from the npm registry (run by hand when upgrading; never at
# run time or in CI: the files are committed, so the viewer works offline).
#   bash scripts/vendor_js.sh            # fetch leaflet@$LEAFLET_VERSION, check its integrity, copy dist files
set -euo pipefail
cd "$(dirname "$0")/.."
LEAFLET_VERSION=1.9.4
# the registry's dist.integrity of leaflet@1.9.4 (npm view leaflet@1.9.4 dist.integrity)
LEAFLET_INTEGRITY="sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="
DEST=core/serve/static/vendor/leaflet
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "leaflet@$LEAFLET_VERSION" >/dev/null)
TGZ="$TMP/leaflet-$LEAFLET_VERSION.tgz"
GOT="sha512-$(openssl dgst -sha512 -binary "$TGZ" | base64 -w0)"
if [ "$GOT" != "$LEAFLET_INTEGRITY" ]; then
    echo "leaflet-$LEAFLET_VERSION.tgz: integrity $GOT differs from $LEAFLET_INTEGRITY" >&2
    exit 1
fi
tar -xzf "$TGZ" -C "$TMP"
mkdir -p "$DEST/images"
cp "$TMP/package/dist/leaflet.js" "$TMP/package/dist/leaflet.css" "$TMP/package/LICENSE" "$DEST/"
cp "$TMP"/package/dist/images/*.png "$DEST/images/"
echo "vendored leaflet $LEAFLET_VERSION into $DEST"
