# promcheck.awk - a checker of the Prometheus text exposition format
# (version 0.0.4) as Metronome's /metrics writes it; used by metrics.sh next
# to promtool (when installed).  Prints one line per problem and exits 1 if
# there is any:
#   - every line is a "# HELP name text", a "# TYPE name type" or a sample
#     "name[{labels}] value", with name matching [a-zA-Z_:][a-zA-Z0-9_:]*;
#   - every family has one HELP and one TYPE (counter, gauge, histogram,
#     summary, untyped), before its samples, and its samples are together;
#   - counters are named *_total, values are numbers (or +Inf, -Inf, NaN),
#     counters and buckets are not negative;
#   - a histogram has _bucket samples with an le label, in increasing le
#     order, cumulative (never decreasing), the last one le="+Inf", and
#     _sum and _count, with _count equal to the +Inf bucket.
function bad(msg) { print "line " NR ": " msg; errors++ }
function family(name, t) {
	if (t == "histogram") { sub(/_(bucket|sum|count)$/, "", name) }
	return name
}
function numeric(v) { return v ~ /^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$/ || v ~ /^([-+]Inf|NaN)$/ }
function finish_hist(f) {
	if (!(f in hist_seen)) return
	if (last_le[f] != "+Inf") bad("histogram " f ": the last bucket is not le=\"+Inf\"")
	if (!(f in hsum)) bad("histogram " f ": no _sum")
	if (!(f in hcount)) bad("histogram " f ": no _count")
	else if (hcount[f] != inf_val[f]) bad("histogram " f ": _count " hcount[f] " != +Inf bucket " inf_val[f])
}
BEGIN { errors = 0; cur = "" }
/^$/ { next }
/^# HELP / {
	n = $3
	if (n !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) bad("bad metric name in HELP: " n)
	if (n in help) bad("second HELP for " n)
	help[n] = 1
	next
}
/^# TYPE / {
	n = $3; t = $4
	if (n in type) bad("second TYPE for " n)
	if (t !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("unknown type " t " for " n)
	if (n in sampled) bad("TYPE for " n " after its samples")
	type[n] = t
	if (t == "counter" && n !~ /_total$/) bad("counter " n " is not named *_total")
	next
}
/^#/ { next }
{
	line = $0
	if (match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/) == 0) { bad("not a sample: " line); next }
	name = substr(line, 1, RLENGTH)
	rest = substr(line, RLENGTH + 1)
	labels = ""
	if (substr(rest, 1, 1) == "{") {
		close_at = index(rest, "}")
		if (close_at == 0) { bad("unclosed labels: " line); next }
		labels = substr(rest, 2, close_at - 2)
		rest = substr(rest, close_at + 1)
		if (labels != "" && labels !~ /^[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*,?$/)
			bad("bad labels: " labels)
	}
	if (rest !~ /^ [^ ]+( [0-9-]+)?$/) { bad("bad value part: '" rest "'"); next }
	split(rest, parts, " ")
	v = parts[1]
	if (!numeric(v)) { bad("value is not a number: " v); next }
	f = name
	if (!(f in type)) {
		f = name; sub(/_(bucket|sum|count)$/, "", f)
		if (!(f in type) || type[f] != "histogram") { bad("sample of " name " without a TYPE line"); next }
	}
	if (!(f in help)) bad("family " f " has no HELP")
	if (f != cur) {
		if (f in sampled) bad("samples of " f " are not together")
		if (cur != "" && type[cur] == "histogram") finish_hist(cur)
		cur = f
	}
	sampled[f] = 1
	t = type[f]
	if ((t == "counter") && v + 0 < 0) bad("negative counter " name)
	if (t == "histogram") {
		hist_seen[f] = 1
		if (name == f "_bucket") {
			if (match(labels, /le="[^"]*"/) == 0) { bad("bucket without le: " line); next }
			le = substr(labels, RSTART + 4, RLENGTH - 5)
			if (!numeric(le)) bad("le is not a number: " le)
			if ((f in last_le) && (last_le[f] == "+Inf" || (le != "+Inf" && le + 0 <= last_le[f] + 0)))
				bad("histogram " f ": le " le " not above the previous " last_le[f])
			if ((f in last_val) && v + 0 < last_val[f] + 0) bad("histogram " f ": bucket le=" le " decreases")
			last_le[f] = le; last_val[f] = v
			if (le == "+Inf") inf_val[f] = v
		} else if (name == f "_sum") hsum[f] = v
		else if (name == f "_count") hcount[f] = v
		else bad("histogram " f ": unexpected sample " name)
	}
}
END {
	if (cur != "" && type[cur] == "histogram") finish_hist(cur)
	if (NR == 0) { print "empty page"; errors++ }
	exit errors > 0
}
