# profile-areas.awk: serve's CPU profile by area, from `go tool pprof -traces BINARY PROFILE`.
#
# Each sample is billed ("self") to the innermost vaxgate package or third-party package on its
# stack — the standard library and the runtime under it (allocation, GC assists, syscalls) count
# as the work of the package that called them — and counted ("cum") for every such package on
# its stack. Stacks of the standard library and runtime alone are the runtime's own work: GC
# background marking, the scheduler, or the root's package.
#
#   awk -v us=SERVE_CPU_US_PER_MESSAGE -f scripts/profile-areas.awk   (us optional)
function secs(v,   n) {
	n = v + 0
	if (v ~ /ms$/) return n / 1e3
	if (v ~ /(us|µs)$/) return n / 1e6
	if (v ~ /ns$/) return n / 1e9
	if (v ~ /min$/) return n * 60
	if (v ~ /h$/) return n * 3600
	return n
}
function area(f,   p, i) {
	sub(/ \(inline\)$/, "", f)
	sub(/\[.*/, "", f) # type parameters may name other packages
	if (f ~ /^main\./) return "cmd/vaxgate"
	if (f ~ /^github\.com\/vaxgate\/vaxgate\//) {
		p = substr(f, length("github.com/vaxgate/vaxgate/") + 1)
	} else if (f ~ /^[a-z0-9.-]+\.[a-z]+\//) { # a module path: third party
		p = f
		if (p ~ /^github\.com\/jackc\//) return "pgx (driver)"
	} else {
		return "" # the standard library or the runtime
	}
	# the package path: up to the first "." after the last "/"
	i = match(p, /\/[^\/]*$/)
	if (i) { rest = substr(p, i + 1); sub(/\..*/, "", rest); return substr(p, 1, i) rest }
	sub(/\..*/, "", p)
	return p
}
function flush(   i, a, self, gc, seen, k) {
	if (nf == 0) return
	total += val
	self = ""
	delete seen
	for (i = 1; i <= nf; i++) {
		a = area(fr[i])
		if (a == "") continue
		if (self == "") self = a
		if (!(a in seen)) { seen[a] = 1; cum[a] += val }
	}
	if (self == "") {
		gc = 0
		for (i = 1; i <= nf; i++) if (fr[i] ~ /^runtime\.(gcBgMarkWorker|bgsweep|bgscavenge)/) gc = 1
		if (gc) self = "runtime: GC (background)"
		else if (fr[nf] ~ /^runtime\./) self = "runtime: scheduler, other"
		else { k = fr[nf]; sub(/ \(inline\)$/, "", k); sub(/\.[^\/]*$/, "", k); self = "stdlib: " k }
	}
	own[self] += val
	nf = 0
}
/^-+\+-+$/ { flush(); intrace = 1; next }
intrace && /^ +[0-9.]+[a-zµ]+ +[^ ]/ { flush(); val = secs($1); nf = 1; fr[1] = $2 " " $3; sub(/ $/, "", fr[1]); sub(/ +$/, "", fr[1]); next }
intrace && /^ +[^ ]/ { fr[++nf] = $1 " " $2; sub(/ +$/, "", fr[nf]); next }
END {
	flush()
	if (total == 0) { print "(empty profile)"; exit }
	for (a in own) names[a] = 1
	for (a in cum) names[a] = 1
	n = 0
	for (a in names) order[++n] = a
	# sort by self, descending (insertion sort: a few dozen areas)
	for (i = 2; i <= n; i++) { k = order[i]; for (j = i - 1; j >= 1 && own[order[j]] < own[k]; j--) order[j + 1] = order[j]; order[j + 1] = k }
	printf "%-44s %8s %7s %10s %8s\n", "area", "self s", "self %", "self µs/msg", "cum %"
	for (i = 1; i <= n; i++) {
		a = order[i]
		if (own[a] / total < 0.002 && cum[a] / total < 0.01) { other += own[a]; continue }
		printf "%-44s %8.2f %6.1f%% %10s %7.1f%%\n", a, own[a], 100 * own[a] / total,
			(us > 0 ? sprintf("%.1f", us * own[a] / total) : "-"), (a in cum ? 100 * cum[a] / total : 0)
	}
	if (other > 0) printf "%-44s %8.2f %6.1f%%\n", "(smaller areas)", other, 100 * other / total
	printf "%-44s %8.2f %6.1f%% %10s\n", "total", total, 100, (us > 0 ? sprintf("%.1f", us) : "-")
}
