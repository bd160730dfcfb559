//! `physio convert --out s3://…` against a real S3-compatible server: moto's server
//! (PyPI `moto[server]`), started on 127.0.0.1 by each test and killed when it ends.
//! The credentials test runs the server with IAM authentication enforced (moto's
//! `reset-auth` API), so requests are SigV4-checked and a wrong secret is really refused.
//! The other tests leave auth off: moto 5.2's SigV4 check rejects any request whose query
//! holds an encoded `/` (e.g. `ListObjectsV2 prefix=ds/`, with boto3 too), which listing
//! a prefix for stale parts needs. Output is read
//! back with pyarrow's own S3 client and compared byte for byte with a local conversion.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use physio::objstore::PAUSE_BEFORE_COMPLETE_ENV as PAUSE_ENV;

use crate::common::{self, physio, python};

const BUCKET: &str = "physio-test";

/// Creates an IAM user with full rights and the test bucket while auth is still off,
/// then (when argv[3] is "1") turns SigV4 authentication on; prints the key pair.
const SETUP_PY: &str = r#"
import sys, boto3, urllib.request
ep = sys.argv[1]
kw = dict(endpoint_url=ep, region_name="us-east-1",
          aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="physio")
iam.put_user_policy(UserName="physio", PolicyName="all", PolicyDocument=
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}')
k = iam.create_access_key(UserName="physio")["AccessKey"]
boto3.client("s3", **kw).create_bucket(Bucket=sys.argv[2])
if sys.argv[3] == "1":
    urllib.request.urlopen(urllib.request.Request(ep + "/moto-api/reset-auth", data=b"0",
        method="POST", headers={"Content-Type": "text/plain"})).read()
print(k["AccessKeyId"], k["SecretAccessKey"])
"#;

/// Prints one JSON object: every object key with its sha256 (read through pyarrow's
/// S3FileSystem), the rows pyarrow reads from each and its ETag, and the open multipart
/// uploads.
const INSPECT_PY: &str = r#"
import sys, json, hashlib, boto3, pyarrow.fs as pafs, pyarrow.parquet as pq
ep, bucket, key, secret = sys.argv[1:5]
fs = pafs.S3FileSystem(endpoint_override=ep.split("://")[1], scheme="http",
                       access_key=key, secret_key=secret, region="us-east-1")
objects = {}
for info in fs.get_file_info(pafs.FileSelector(bucket, recursive=True)):
    if info.type != pafs.FileType.File:
        continue
    with fs.open_input_stream(info.path) as f:
        data = f.read()
    rows = pq.read_table(info.path, filesystem=fs).num_rows if info.path.endswith(".parquet") else None
    objects[info.path[len(bucket) + 1:]] = {"sha256": hashlib.sha256(data).hexdigest(), "rows": rows}
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  aws_access_key_id=key, aws_secret_access_key=secret)
for name, obj in objects.items():
    obj["etag"] = s3.head_object(Bucket=bucket, Key=name)["ETag"].strip('"')
uploads = [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
print(json.dumps({"objects": objects, "uploads": uploads}))
"#;

/// A running moto server; killed (and reaped) on drop so no test leaks a process.
struct Moto {
    child: Child,
    endpoint: String,
    key_id: String,
    secret: String,
}

impl Moto {
    /// Starts moto on a free port, waits until it answers, and sets it up, enforcing
    /// SigV4 authentication when `enforce_auth`.
    fn start(enforce_auth: bool) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto server");
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            key_id: String::new(),
            secret: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = Command::new(python())
            .args(["-c", SETUP_PY, &moto.endpoint, BUCKET])
            .arg(if enforce_auth { "1" } else { "0" })
            .output()
            .expect("run setup");
        assert!(
            out.status.success(),
            "moto setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let keys = String::from_utf8_lossy(&out.stdout).to_string();
        let mut it = keys.split_whitespace();
        moto.key_id = it.next().expect("key id").to_string();
        moto.secret = it.next().expect("secret").to_string();
        moto
    }

    /// Sets the AWS environment physio reads (after clearing any inherited one).
    fn env(&self, cmd: &mut Command, secret: &str) {
        for var in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT",
            "AWS_ENDPOINT_URL_S3",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            PAUSE_ENV,
        ] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true");
    }

    /// `physio convert INPUT --out URL ARGS…` with this server's valid credentials.
    fn convert(&self, input: &Path, out: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("physio"));
        cmd.arg("convert")
            .arg(input)
            .args(["--out", out])
            .args(args);
        self.env(&mut cmd, &self.secret);
        cmd
    }

    /// The bucket's objects (key → sha256, rows) and open multipart uploads.
    fn inspect(&self) -> serde_json::Value {
        let out = Command::new(python())
            .args([
                "-c",
                INSPECT_PY,
                &self.endpoint,
                BUCKET,
                &self.key_id,
                &self.secret,
            ])
            .output()
            .expect("run inspect");
        assert!(
            out.status.success(),
            "inspect failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("inspect JSON")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        std::fs::read(path).expect("read local output"),
    ))
}

fn have_deps() -> bool {
    common::have_python_modules(&["moto", "boto3", "flask", "pyarrow"])
}

fn records() -> std::path::PathBuf {
    common::conformance_dir().join("records")
}

/// Converts `records()` locally with `args` into `out` and returns the status.
fn convert_local(out: &Path, args: &[&str]) -> std::process::Output {
    physio()
        .arg("convert")
        .arg(records())
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("run local convert")
}

#[test]
fn directory_output_matches_local_bytes_and_is_idempotent() {
    if !have_deps() {
        return;
    }
    let moto = Moto::start(false);
    let local = tempfile::tempdir().expect("tempdir");
    // Small files and row groups so that the corpus spans several parts.
    let args = [
        "--layout",
        "samples",
        "--row-group-rows",
        "1000",
        "--max-file-bytes",
        "20000",
    ];
    let local_out = convert_local(&local.path().join("parts"), &args);
    let local_code = local_out.status.code();

    let url = format!("s3://{BUCKET}/ds/");
    let out = moto
        .convert(&records(), &url, &[&args[..], &["--json"]].concat())
        .output()
        .expect("run convert");
    assert_eq!(
        out.status.code(),
        local_code,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    let mut local_files: Vec<_> = std::fs::read_dir(local.path().join("parts"))
        .expect("local dir")
        .map(|e| e.expect("entry").path())
        .collect();
    local_files.sort();
    assert!(
        local_files.len() > 1,
        "expected several parts: {local_files:?}"
    );
    let expected_urls: Vec<String> = local_files
        .iter()
        .map(|p| {
            format!(
                "s3://{BUCKET}/ds/{}",
                p.file_name().expect("name").to_string_lossy()
            )
        })
        .collect();
    assert_eq!(summary["files"], serde_json::json!(expected_urls));

    let seen = moto.inspect();
    let objects = seen["objects"].as_object().expect("objects");
    assert_eq!(objects.len(), local_files.len(), "{seen}");
    let mut rows = 0;
    for p in &local_files {
        let name = format!("ds/{}", p.file_name().expect("name").to_string_lossy());
        assert_eq!(
            objects[&name]["sha256"].as_str(),
            Some(sha256_file(p).as_str()),
            "{name} differs from the local output"
        );
        rows += objects[&name]["rows"].as_u64().expect("rows");
    }
    assert_eq!(Some(rows), summary["rows"].as_u64());
    assert_eq!(
        seen["uploads"],
        serde_json::json!([]),
        "no upload left open"
    );

    // Re-run with fewer records: same prefix, fewer parts; the extra old parts go, as
    // on disk, and the remaining objects equal a local run of the same options.
    let fewer = ["--layout", "samples", "--row-group-rows", "1000"];
    let out = moto
        .convert(&records(), &url, &[&fewer[..], &["--json"]].concat())
        .output()
        .expect("rerun");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(
        summary["files"],
        serde_json::json!([format!("s3://{BUCKET}/ds/part-00000.parquet")])
    );
    assert_eq!(
        summary["deleted_stale"].as_array().map(Vec::len),
        Some(local_files.len() - 1)
    );
    let local2 = tempfile::tempdir().expect("tempdir");
    convert_local(&local2.path().join("p"), &fewer);
    let seen = moto.inspect();
    let objects = seen["objects"].as_object().expect("objects");
    assert_eq!(objects.len(), 1, "{seen}");
    assert_eq!(
        objects["ds/part-00000.parquet"]["sha256"].as_str(),
        Some(sha256_file(&local2.path().join("p/part-00000.parquet")).as_str())
    );
}

#[test]
fn single_file_key_matches_local_bytes() {
    if !have_deps() {
        return;
    }
    let moto = Moto::start(false);
    let local = tempfile::tempdir().expect("tempdir");
    let local_file = local.path().join("all.parquet");
    let local_code = convert_local(&local_file, &[]).status.code();
    for _ in 0..2 {
        // Twice: the second run overwrites with identical bytes (idempotence).
        let out = moto
            .convert(&records(), &format!("s3://{BUCKET}/one/all.parquet"), &[])
            .output()
            .expect("run convert");
        assert_eq!(
            out.status.code(),
            local_code,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let seen = moto.inspect();
    let objects = seen["objects"].as_object().expect("objects");
    assert_eq!(objects.len(), 1, "{seen}");
    assert_eq!(
        objects["one/all.parquet"]["sha256"].as_str(),
        Some(sha256_file(&local_file).as_str())
    );
    assert!(objects["one/all.parquet"]["rows"].as_u64() > Some(0));

    // A missing bucket is found before converting, with the store's reason.
    let out = moto
        .convert(&records(), "s3://no-such-bucket/one/all.parquet", &[])
        .output()
        .expect("run convert");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("NoSuchBucket"), "stderr: {stderr}");
}

/// Writes one 12-signal record of 700,000 random samples (16.8 MB of format 16), so its
/// Parquet file is larger than one upload part.
const BIG_RECORD_PY: &str = r#"
import sys, numpy as np, wfdb
d = np.random.default_rng(7).integers(-2000, 2000, size=(700_000, 12)).astype(np.int16)
wfdb.wrsamp("big", fs=500, units=["mV"] * 12, sig_name=[f"s{j}" for j in range(12)],
            d_signal=d, fmt=["16"] * 12, adc_gain=[200.0] * 12, baseline=[0] * 12,
            write_dir=sys.argv[1])
"#;

#[test]
fn large_file_is_uploaded_in_several_parts() {
    if !have_deps() || !common::have_python_modules(&["wfdb", "numpy"]) {
        return;
    }
    let input = tempfile::tempdir().expect("tempdir");
    let status = Command::new(python())
        .args(["-c", BIG_RECORD_PY])
        .arg(input.path())
        .status()
        .expect("generate record");
    assert!(status.success());
    let moto = Moto::start(false);
    let local = tempfile::tempdir().expect("tempdir");
    let local_file = local.path().join("big.parquet");
    let out = physio()
        .arg("convert")
        .arg(input.path())
        .arg("--out")
        .arg(&local_file)
        .output()
        .expect("local convert");
    assert!(out.status.success());
    let size = std::fs::metadata(&local_file).expect("local file").len();
    assert!(
        size > 8 * 1024 * 1024,
        "want more than one 8 MiB part: {size}"
    );
    let out = moto
        .convert(input.path(), &format!("s3://{BUCKET}/big.parquet"), &[])
        .output()
        .expect("run convert");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = moto.inspect();
    let obj = &seen["objects"]["big.parquet"];
    assert_eq!(
        obj["sha256"].as_str(),
        Some(sha256_file(&local_file).as_str())
    );
    // A multipart object's ETag is `<md5 of part md5s>-<part count>`.
    let parts = size.div_ceil(8 * 1024 * 1024);
    assert!(
        obj["etag"]
            .as_str()
            .is_some_and(|e| e.ends_with(&format!("-{parts}"))),
        "{obj}"
    );
    assert_eq!(obj["rows"].as_u64(), Some(1));
}

#[test]
fn killed_upload_leaves_no_object() {
    if !have_deps() {
        return;
    }
    let moto = Moto::start(false);
    // The test hook holds every upload open after its parts are stored and before it
    // is completed, long enough to kill the process mid-upload.
    let mut cmd = moto.convert(&records(), &format!("s3://{BUCKET}/k/"), &[]);
    cmd.env(PAUSE_ENV, "60000")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn convert");
    let deadline = Instant::now() + Duration::from_secs(120);
    let seen = loop {
        let seen = moto.inspect();
        if seen["uploads"].as_array().is_some_and(|u| !u.is_empty()) {
            break seen;
        }
        assert!(
            child.try_wait().expect("poll").is_none(),
            "convert ended before its upload was observed"
        );
        assert!(Instant::now() < deadline, "no multipart upload ever opened");
        std::thread::sleep(Duration::from_millis(200));
    };
    // SIGKILL: no destructor, no abort request, nothing graceful.
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert_eq!(seen["uploads"], serde_json::json!(["k/part-00000.parquet"]));
    let after = moto.inspect();
    assert_eq!(
        after["objects"],
        serde_json::json!({}),
        "a killed upload must leave no object: {after}"
    );
    assert_eq!(
        after["uploads"],
        serde_json::json!(["k/part-00000.parquet"])
    );
}

#[test]
fn wrong_credentials_fail_clearly_without_leaking_the_secret() {
    if !have_deps() {
        return;
    }
    let moto = Moto::start(true);
    let wrong = "WrongSecretValue1234567890abcdefghijklmn";
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("physio"));
    cmd.arg("convert")
        .arg(records())
        .args(["--out", &format!("s3://{BUCKET}/x/")]);
    moto.env(&mut cmd, wrong);
    let out = cmd.output().expect("run convert");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert!(stderr.contains("access denied"), "stderr: {stderr}");
    assert!(!stderr.contains(wrong), "secret leaked: {stderr}");
    assert!(!stderr.contains(&moto.secret), "secret leaked: {stderr}");
    let seen = moto.inspect();
    assert_eq!(seen["objects"], serde_json::json!({}));
}

#[test]
fn unsupported_object_urls_are_usage_errors() {
    let out = physio()
        .arg("convert")
        .arg(records())
        .args(["--out", "gs://bucket/prefix/"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gs://"));
    let out = physio()
        .args(["fetch", "ptb-xl", "--out", "s3://bucket/prefix/"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("convert only"));
}
