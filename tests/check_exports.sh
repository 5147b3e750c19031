#!/usr/bin/env bash
# Checks that the shared library exports every function the header declares,
# that it exports no other tf_ symbol, and that it carries its SONAME.
# Usage: tests/check_exports.sh LIB.so HEADER.h
set -euo pipefail
lib=$1 header=$2
command -v nm >/dev/null || { echo "nm is missing: apt-get install -y binutils" >&2; exit 1; }
# Functions declared at column 0 (not the names mentioned in comments).
declared=$(grep -E '^[a-z].*\btf_[a-z_]+\(' "$header" | grep -oE '\btf_[a-z_]+\(' | tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" && $3 ~ /^tf_/ {print $3}' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
extra=$(comm -13 <(echo "$declared") <(echo "$exported"))
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
fail=0
[ -z "$missing" ] || { echo "declared but not exported:"; echo "$missing"; fail=1; }
[ -z "$extra" ] || { echo "exported but not declared:"; echo "$extra"; fail=1; }
[ "$soname" = "libtaskfarm_worker.so.0" ] || { echo "SONAME is '$soname', not libtaskfarm_worker.so.0"; fail=1; }
count=$(echo "$declared" | wc -l)
if [ $fail -eq 0 ]; then
  echo "exports: $count functions declared and exported, SONAME $soname"
  echo "1 passed, 0 failed"
else
  echo "0 passed, 1 failed"
fi
exit $fail
