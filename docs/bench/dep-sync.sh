#!/bin/sh
# usage: dep-bench.sh BIN [DATABASE_URL]
set -e
B=$1; DB=$2
D=$(mktemp -d)
$B dep-sim --listen 127.0.0.1:18090 --devices 100000 --write-token $D/token.json > $D/sim.log 2>&1 &
SIM=$!
sleep 2
if [ -n "$DB" ]; then DBARG="--database-url $DB"; else DBARG=""; fi
$B serve --insecure-http --data-dir $D/data --listen 127.0.0.1:18443 --admin-listen 127.0.0.1:18080 \
   --dep-url http://127.0.0.1:18090 $DBARG > $D/serve.log 2>&1 &
SERVER=$!
sleep 3
export RUSSET_DATA_DIR=$D/data
$B dep link create bench > /dev/null 2>&1
$B dep link token bench $D/token.json
echo "server before sync: $(grep VmHWM /proc/$SERVER/status)"
/usr/bin/time -f 'dep sync wall %e s' $B dep sync --link bench 2> $D/sync.err
tail -n 3 $D/sync.err
echo "server after sync:  $(grep VmHWM /proc/$SERVER/status)"
echo "server CPU (utime+stime ticks): $(awk '{print $14+$15}' /proc/$SERVER/stat)"
$B dep devices --status not_assigned --limit 1 > /dev/null
kill $SERVER; kill $SIM
wait $SERVER 2>/dev/null || true
rm -rf $D
