#!/usr/bin/env bash
# Checks that every .cc and .h under src/ and tests/ starts with a comment
# (STYLE: each file says in its first lines what it owns). Lists the files
# that do not and exits 1; exits 0 when every file has one. Exact: the first
# non-blank line must begin with // or /*.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
missing=0
while IFS= read -r -d '' f; do
  first=$(grep -m1 -v '^[[:space:]]*$' "$f" || true)
  case "$first" in
    //* | /\**) ;;
    *)
      echo "no header comment: $f (say in its first lines what it owns)"
      missing=1
      ;;
  esac
done < <(find src tests \( -name '*.cc' -o -name '*.h' \) -print0 | sort -z)
exit "$missing"
