"""S3 requests and bytes of one `drydock apply` of N generated node groups with the state on
moto's S3 (the sim cloud on its virtual clock, boot 0), counted with moto's request recorder.

    target/moto-venv/bin/python benches/state_s3/measure.py target/debug/drydock 500

The moto venv is the one the tests build (tests/moto). Prints one JSON line: PUTs by kind
(state object, journal objects, lock), bytes PUT, GETs, DELETEs and the wall time. Issue 13
measured 500 groups with it before and after the write-ahead journal (see docs/state.md).
"""
import base64, json, os, random, socket, subprocess, sys, tempfile, time

import boto3
import requests


def fleet(n):
    r = random.Random(7)
    out = ['provider "sim" {\n  boot_time = 0s\n}\n']
    for c in range((n + 9) // 10):
        out.append(
            f'cluster "c{c:04}" {{\n  kubernetes_version = "1.31"\n  tags = {{ team = "platform" }}\n'
            '  network {\n    subnets = ["subnet-a", "subnet-b"]\n  }\n'
            '  defaults {\n    image = "img-1"\n    instance_type = "m6i.large"\n  }\n'
        )
        for g in range(min(10, n - c * 10)):
            out.append(f'  node_group "g{g}" {{\n    size = {1 + r.randrange(3)}\n    labels = {{ pool = "g{g}" }}\n  }}\n')
        out.append("}\n")
    out.append('\nbackend "s3" {\n  bucket = "state"\n  key = "fleet/drydock.state.json"\n}\n')
    return "".join(out)


def main():
    binary, n = sys.argv[1], int(sys.argv[2])
    venv = os.path.dirname(sys.executable)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    work = tempfile.mkdtemp()
    server = subprocess.Popen([os.path.join(venv, "moto_server"), "-p", str(port)], cwd=work,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ep = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(ep + "/moto-api/", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        creds = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
        s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1", **creds)
        s3.create_bucket(Bucket="state")
        s3.put_bucket_versioning(Bucket="state", VersioningConfiguration={"Status": "Enabled"})
        d = os.path.join(work, "config")
        os.mkdir(d)
        with open(os.path.join(d, "main.kcl"), "w") as f:
            f.write(fleet(n))
        env = dict(os.environ, AWS_ENDPOINT_URL=ep, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true", DRYDOCK_SIM_CLOCK="virtual",
                   AWS_CONFIG_FILE="/nonexistent/config", AWS_SHARED_CREDENTIALS_FILE="/nonexistent/credentials")
        requests.post(ep + "/moto-api/recorder/reset-recording")
        requests.post(ep + "/moto-api/recorder/start-recording")
        started = time.time()
        out = subprocess.run([os.path.abspath(binary), "apply", ".", "--auto-approve"], cwd=d, env=env,
                             capture_output=True)
        elapsed = time.time() - started
        requests.post(ep + "/moto-api/recorder/stop-recording")
        recording = requests.get(ep + "/moto-api/recorder/download-recording").text
        if out.returncode != 0:
            sys.exit(out.stderr.decode()[-2000:])
        puts, put_bytes, gets, deletes = {}, 0, 0, 0
        for line in filter(str.strip, recording.splitlines()):
            r = json.loads(line)
            if r["method"] == "PUT":
                kind = "journal" if ".journal/" in r["url"] else "lock" if ".lock" in r["url"] else "state"
                puts[kind] = puts.get(kind, 0) + 1
                body = r.get("body") or ""
                if str(r.get("body_encoded")) == "True":
                    put_bytes += len(base64.b64decode(body))
                else:
                    put_bytes += len(body.encode() if isinstance(body, str) else body)
            elif r["method"] == "GET":
                gets += 1
            elif r["method"] == "DELETE":
                deletes += 1
        print(json.dumps({"groups": n, "seconds": round(elapsed, 1), "puts": puts, "put_bytes": put_bytes,
                          "gets": gets, "deletes": deletes}))
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
