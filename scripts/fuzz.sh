#!/usr/bin/env bash
# Runs every Fuzz target found in the module's tests (or under the directories given as arguments)
# for FUZZTIME (default 10s) each. `go test -fuzz` accepts one target of one package per run, hence
# the loop. New failing inputs are written by go to the package's testdata/fuzz/: commit them.
#
#   scripts/fuzz.sh                 every target
#   FUZZTIME=1m scripts/fuzz.sh hl7 the hl7 package's targets, a minute each
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO="${GO:-go}"
FUZZTIME="${FUZZTIME:-10s}"

found=0
failed=0
# Each test file declaring `func FuzzXxx(f *testing.F)`: its directory is the package.
while IFS= read -r file; do
	dir="$(dirname "$file")"
	[[ "$dir" == /* || "$dir" == ./* || "$dir" == . ]] || dir="./$dir"
	while IFS= read -r name; do
		found=$((found + 1))
		echo "== fuzz $dir $name ($FUZZTIME)"
		if ! "$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$dir"; then
			failed=$((failed + 1))
		fi
	done < <(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*\*testing\.F\).*/\1/p' "$file")
done < <(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' "${@:-.}" | grep -v -e '/vendor/' -e '/testdata/' | sort)

echo "fuzz: $found target(s), $failed failed"
[ "$failed" -eq 0 ]
