// Package bench holds etcdkit's benchmark suite: every operation through
// etcdkit and directly through clientv3, against the same server in the same
// run, so that benchstat can put the two side by side. It has no API; see
// BENCHMARKS.md at the repository root for the figures and bench/run.sh to
// reproduce them.
package bench
