#!/usr/bin/env bash
# (docs/witness-cost.md: what a witness costs at idle)
# Usage: bench/witness_idle.sh NODE_DIR SECONDS: CPU % and RSS of the node's agent and etcd over SECONDS.
set -euo pipefail
dir=$1; secs=${2:-60}
tick=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
a=$(head -1 $dir/agent.pid); e=$(head -1 $dir/etcd.pid)
a0=$(ticks $a); e0=$(ticks $e); sleep $secs; a1=$(ticks $a); e1=$(ticks $e)
rss() { awk '/VmRSS/{printf "%.1f MiB", $2/1024}' /proc/$1/status; }
echo "agent pid $a: CPU $(echo "scale=2; ($a1-$a0)*100/$tick/$secs" | bc) %, RSS $(rss $a), threads $(ls /proc/$a/task | wc -l)"
echo "etcd  pid $e: CPU $(echo "scale=2; ($e1-$e0)*100/$tick/$secs" | bc) %, RSS $(rss $e)"
du -sh $dir/etcd | awk '{print "etcd data: "$1}'
