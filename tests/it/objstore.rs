//! `physio convert --out s3://…` and `physio fetch --out s3://…` against a real
//! S3-compatible server: moto's server (PyPI `moto[server]`), started on 127.0.0.1 by
//! each test and killed when it ends; and `fetch --out az://…` against Azurite (npm
//! `azurite`, installed by `scripts/test`), started the same way.
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
    head = s3.head_object(Bucket=bucket, Key=name)
    obj["etag"] = head["ETag"].strip('"')
    obj["meta_sha256"] = head.get("Metadata", {}).get("sha256")
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

    /// `physio fetch DATASET --base-url BASE --out URL ARGS…` with this server's valid
    /// credentials, and PhysioNet credentials in the environment that must never reach
    /// the store or the output.
    fn fetch(&self, dataset: &str, base: &str, out: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("physio"));
        cmd.args(["fetch", dataset, "--base-url", base, "--out", out])
            .args(args)
            .env("PHYSIONET_USERNAME", "physio-user")
            .env("PHYSIONET_PASSWORD", PHYSIONET_SECRET)
            // Debug logs too must not carry the secret (checked by `run_json`).
            .env("PHYSIO_LOG", "debug");
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

/// Runs `cmd` with every upload held open before completion, waits until moto shows
/// a multipart upload in progress, SIGKILLs the process (no destructor, no abort
/// request, nothing graceful) and returns what moto showed at that moment.
fn kill_mid_upload(moto: &Moto, cmd: &mut Command) -> serde_json::Value {
    cmd.env(PAUSE_ENV, "60000")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn physio");
    let deadline = Instant::now() + Duration::from_secs(120);
    let seen = loop {
        let seen = moto.inspect();
        if seen["uploads"].as_array().is_some_and(|u| !u.is_empty()) {
            break seen;
        }
        assert!(
            child.try_wait().expect("poll").is_none(),
            "physio ended before its upload was observed"
        );
        assert!(Instant::now() < deadline, "no multipart upload ever opened");
        std::thread::sleep(Duration::from_millis(200));
    };
    child.kill().expect("kill");
    child.wait().expect("reap");
    seen
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
    let seen = kill_mid_upload(&moto, &mut cmd);
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

    // fetch: refused at the first listing, before any download, with the same exit code.
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("physio"));
    cmd.args(["fetch", "physio-demo", "--base-url", &mirror_base()])
        .args(["--out", &format!("s3://{BUCKET}/f")]);
    moto.env(&mut cmd, wrong);
    let out = cmd.output().expect("run fetch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert!(!stderr.contains(wrong), "secret leaked: {stderr}");
    assert_eq!(moto.inspect()["objects"], serde_json::json!({}));
}

#[test]
fn unsupported_object_urls_are_usage_errors() {
    let out = physio()
        .arg("convert")
        .arg(records())
        .args(["--out", "abfss://c@a.dfs.core.windows.net/prefix/"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("abfss://"));
    let out = physio()
        .args([
            "fetch",
            "ptb-xl",
            "--out",
            "abfss://c@a.dfs.core.windows.net/p/",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("az://container/prefix"));
    let out = physio()
        .args(["fetch", "kaggle:o/d", "--out", "s3://bucket/prefix/"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PhysioNet datasets only"));
}

// ---------------------------------------------------------------------------------
// `physio fetch --out s3://…`

/// A PhysioNet password set in every fetch's environment; it must never show up in the
/// output (the mirror and test server need none, and the store gets only AWS keys).
const PHYSIONET_SECRET: &str = "PhysioNetSecret-do-not-leak-42";

fn mirror_base() -> String {
    format!(
        "file://{}",
        common::repo_root().join("fixtures/mirror").display()
    )
}

fn mirror_version_dir() -> std::path::PathBuf {
    common::repo_root().join("fixtures/mirror/files/physio-demo/1.0.0")
}

/// Every regular file under `dir` as (`/`-separated relative path, sha256 hex).
fn tree_digests(dir: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().to_string();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().expect("type").is_dir() {
                walk(&e.path(), &r, out);
            } else {
                out.push((r, sha256_file(&e.path())));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// Runs `cmd`, checks its exit code and that the PhysioNet secret is nowhere in its
/// output, and returns its JSON summary.
fn run_json(cmd: &mut Command, code: i32) -> serde_json::Value {
    let out = cmd.output().expect("run physio");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {stderr}\nstdout: {stdout}"
    );
    assert!(
        !stdout.contains(PHYSIONET_SECRET) && !stderr.contains(PHYSIONET_SECRET),
        "PhysioNet secret leaked"
    );
    serde_json::from_slice(&out.stdout).expect("JSON summary")
}

#[test]
fn fetch_mirror_to_s3_matches_bytes_and_reruns_transfer_nothing() {
    if !have_deps() {
        return;
    }
    let moto = Moto::start(false);
    let url = format!("s3://{BUCKET}/mirror");
    let files = tree_digests(&mirror_version_dir());
    // The mirror's SHA256SUMS.txt is itself one of its files; physio writes it as well.
    let data_files = files.iter().filter(|(p, _)| p != "SHA256SUMS.txt").count();

    let summary = run_json(
        &mut moto.fetch("physio-demo", &mirror_base(), &url, &["--json"]),
        0,
    );
    assert_eq!(
        summary["fetched"].as_u64(),
        Some(data_files as u64),
        "{summary}"
    );
    assert_eq!(
        summary["dir"].as_str(),
        Some(format!("s3://{BUCKET}/mirror/physio-demo/1.0.0").as_str())
    );

    let seen = moto.inspect();
    let objects = seen["objects"].as_object().expect("objects");
    let mut keys: Vec<_> = objects.keys().cloned().collect();
    keys.sort();
    let want: Vec<_> = files
        .iter()
        .map(|(p, _)| format!("mirror/physio-demo/1.0.0/{p}"))
        .collect();
    assert_eq!(keys, want, "exactly the mirror's files");
    for (p, sha) in &files {
        let obj = &objects[&format!("mirror/physio-demo/1.0.0/{p}")];
        assert_eq!(obj["sha256"].as_str(), Some(sha.as_str()), "{p} differs");
        if p != "SHA256SUMS.txt" {
            assert_eq!(
                obj["meta_sha256"].as_str(),
                Some(sha.as_str()),
                "{p} metadata"
            );
        }
    }
    assert_eq!(
        seen["uploads"],
        serde_json::json!([]),
        "no upload left open"
    );

    // A re-run transfers nothing: every object's size and recorded digest match.
    let again = run_json(
        &mut moto.fetch("physio-demo", &mirror_base(), &url, &["--json"]),
        0,
    );
    assert_eq!(again["fetched"].as_u64(), Some(0), "{again}");
    assert_eq!(
        again["skipped"].as_u64(),
        Some(data_files as u64),
        "{again}"
    );
    assert_eq!(again["bytes"].as_u64(), Some(0), "{again}");
    let dry = run_json(
        &mut moto.fetch(
            "physio-demo",
            &mirror_base(),
            &url,
            &["--json", "--dry-run"],
        ),
        0,
    );
    assert_eq!(dry["total_files"].as_u64(), Some(0), "{dry}");
    assert_eq!(
        dry["already_verified"].as_u64(),
        Some(data_files as u64),
        "{dry}"
    );

    // `verify` re-reads every object against the stored SHA256SUMS.txt …
    let version = format!("s3://{BUCKET}/mirror/physio-demo/1.0.0");
    let mut verify = Command::new(assert_cmd::cargo::cargo_bin("physio"));
    verify.args(["verify", &version, "--json"]);
    moto.env(&mut verify, &moto.secret);
    let report = run_json(&mut verify, 0);
    assert_eq!(report["ok"].as_u64(), Some(data_files as u64), "{report}");
    // … and names an object changed behind physio's back, and one deleted.
    let tamper = Command::new(python())
        .args([
            "-c",
            "import sys, boto3; s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4]); p = 'mirror/physio-demo/1.0.0/'; s3.put_object(Bucket=sys.argv[2], Key=p + '100.hea', Body=b'tampered'); s3.delete_object(Bucket=sys.argv[2], Key=p + 'RECORDS')",
            &moto.endpoint,
            BUCKET,
            &moto.key_id,
            &moto.secret,
        ])
        .status()
        .expect("tamper");
    assert!(tamper.success());
    let report = run_json(&mut verify, 4);
    assert_eq!(
        report["missing"],
        serde_json::json!(["RECORDS"]),
        "{report}"
    );
    assert_eq!(report["mismatched"][0]["path"], "100.hea", "{report}");
    // A fetch notices the changed object (its size and digest no longer match) and
    // replaces just the two files.
    let repair = run_json(
        &mut moto.fetch("physio-demo", &mirror_base(), &url, &["--json"]),
        0,
    );
    assert_eq!(repair["fetched"].as_u64(), Some(2), "{repair}");
    run_json(&mut verify, 0);
}

#[test]
fn fetch_to_s3_replaces_changed_refuses_corrupt_and_deletes_removed() {
    if !have_deps() {
        return;
    }
    let moto = Moto::start(false);
    let server = common::server::TestServer::start();
    let file = |p: &str, b: &[u8]| (p.to_string(), b.to_vec());
    let v1 = [
        file("RECORDS", b"a\n"),
        file("a.hea", b"a 1 250 4\na.dat 16 200 16 0 0 0 0 ECG\n"),
        file("a.dat", &[1, 0, 2, 0, 3, 0, 4, 0]),
        file("old/gone.txt", b"removed upstream later"),
    ];
    server.add_project("demo", "1.0.0", &v1, true);
    let url = format!("s3://{BUCKET}/p/");
    let key = |p: &str| format!("p/demo/1.0.0/{p}");
    let first = run_json(
        &mut moto.fetch("demo@1.0.0", &server.url(), &url, &["--json"]),
        0,
    );
    assert_eq!(first["fetched"].as_u64(), Some(4), "{first}");

    // Upstream changes a.dat (same size, new bytes), drops old/gone.txt, adds b.dat
    // whose served bytes do not match the published checksum.
    let b_good = vec![9u8; 64];
    let v2 = [
        file("RECORDS", b"a\n"),
        file("a.hea", b"a 1 250 4\na.dat 16 200 16 0 0 0 0 ECG\n"),
        file("a.dat", &[5, 0, 6, 0, 7, 0, 8, 0]),
        (String::from("b.dat"), b_good.clone()),
    ];
    server.add_project("demo", "1.0.0", &v2, true);
    let mut b_bad = b_good.clone();
    b_bad[10] ^= 0xff;
    server.corrupt("/files/demo/1.0.0/b.dat", b_bad);
    let out = moto
        .fetch("demo@1.0.0", &server.url(), &url, &["--json", "--delete"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "stderr: {stderr}");
    assert!(
        stderr.contains("b.dat"),
        "the corrupt file is named: {stderr}"
    );
    assert!(!stderr.contains(PHYSIONET_SECRET));
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(second["fetched"], serde_json::json!(1), "{second}");
    assert_eq!(second["failed"], serde_json::json!(1), "{second}");
    assert_eq!(
        second["deleted"],
        serde_json::json!(["old/gone.txt"]),
        "{second}"
    );

    let seen = moto.inspect();
    let objects = seen["objects"].as_object().expect("objects");
    assert_eq!(
        objects[&key("a.dat")]["sha256"].as_str(),
        Some(sha256_bytes(&[5, 0, 6, 0, 7, 0, 8, 0]).as_str()),
        "the changed file was uploaded again"
    );
    assert!(
        !objects.contains_key(&key("b.dat")),
        "no object for bad bytes: {seen}"
    );
    assert!(
        !objects.contains_key(&key("old/gone.txt")),
        "deleted: {seen}"
    );
    assert_eq!(
        seen["uploads"],
        serde_json::json!([]),
        "the failed file opened no upload"
    );

    // Once the server serves the right bytes, only b.dat is transferred.
    server.corrupt("/files/demo/1.0.0/b.dat", b_good.clone());
    let third = run_json(
        &mut moto.fetch("demo@1.0.0", &server.url(), &url, &["--json"]),
        0,
    );
    assert_eq!(third["fetched"], serde_json::json!(1), "{third}");
    assert_eq!(third["skipped"], serde_json::json!(3), "{third}");
    let seen = moto.inspect();
    assert_eq!(
        seen["objects"][&key("b.dat")]["sha256"].as_str(),
        Some(sha256_bytes(&b_good).as_str())
    );
}

#[test]
fn fetch_to_s3_without_recorded_digest_is_not_trusted() {
    if !have_deps() {
        return;
    }
    let moto = Moto::start(false);
    let server = common::server::TestServer::start();
    let good = b"0123456789".to_vec();
    server.add_project(
        "demo",
        "1.0.0",
        &[("x.dat".to_string(), good.clone())],
        true,
    );
    // Same size, wrong bytes, no `sha256` metadata: as a tool other than physio left it.
    let put = Command::new(python())
        .args([
            "-c",
            "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4]).put_object(Bucket=sys.argv[2], Key='q/demo/1.0.0/x.dat', Body=b'abcdefghij')",
            &moto.endpoint,
            BUCKET,
            &moto.key_id,
            &moto.secret,
        ])
        .status()
        .expect("put");
    assert!(put.success());
    let url = format!("s3://{BUCKET}/q");
    let summary = run_json(
        &mut moto.fetch("demo@1.0.0", &server.url(), &url, &["--json"]),
        0,
    );
    assert_eq!(summary["fetched"], serde_json::json!(1), "{summary}");
    // A missing bucket fails the run at once (exit 1) with the store's reason.
    let out = moto
        .fetch("demo@1.0.0", &server.url(), "s3://no-such-bucket/q", &[])
        .output()
        .expect("run fetch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("NoSuchBucket"), "stderr: {stderr}");
    let seen = moto.inspect();
    let obj = &seen["objects"]["q/demo/1.0.0/x.dat"];
    assert_eq!(obj["sha256"].as_str(), Some(sha256_bytes(&good).as_str()));
}

fn sha256_bytes(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn killed_fetch_to_s3_leaves_no_object_at_a_final_key() {
    if !have_deps() {
        return;
    }
    let moto = Moto::start(false);
    let server = common::server::TestServer::start();
    // Larger than one 8 MiB part, so the open upload already holds a stored part.
    let big: Vec<u8> = (0..9 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    server.add_project("demo", "1.0.0", &[("big.dat".to_string(), big)], true);
    server.set_latency(Duration::from_millis(200));
    let mut cmd = moto.fetch(
        "demo@1.0.0",
        &server.url(),
        &format!("s3://{BUCKET}/k"),
        &[],
    );
    let seen = kill_mid_upload(&moto, &mut cmd);
    assert_eq!(seen["uploads"], serde_json::json!(["k/demo/1.0.0/big.dat"]));
    let after = moto.inspect();
    let objects = after["objects"].as_object().expect("objects");
    assert!(
        !objects.contains_key("k/demo/1.0.0/big.dat"),
        "a killed upload must leave no object: {after}"
    );
    // Only the small SHA256SUMS.txt (one atomic PUT) may already be there.
    assert!(
        objects.keys().all(|k| k == "k/demo/1.0.0/SHA256SUMS.txt"),
        "{after}"
    );
}

// ---------------------------------------------------------------------------------
// `physio fetch --out az://…` against Azurite

/// Azurite's well-known development account and key (public, documented by Microsoft).
const AZURITE_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates a container (`create`) or prints every blob of one as JSON (`list`): name →
/// sha256 of its bytes and its `x-ms-meta-sha256`, using Shared Key authentication by
/// hand with the Python standard library, so the reader shares no code with physio.
const AZURE_PY: &str = r#"
import sys, base64, hmac, hashlib, json, urllib.request, urllib.parse, email.utils
import xml.etree.ElementTree as ET
ACCOUNT = "devstoreaccount1"
ep, cmd, container, key = sys.argv[1:5]
KEY = base64.b64decode(key)
def req(method, path, query=None):
    query = query or {}
    headers = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    ctype = "application/octet-stream" if method == "PUT" else ""
    canon = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    resource = f"/{ACCOUNT}/{ACCOUNT}{path}" + "".join(f"\n{k}:{v}" for k, v in sorted(query.items()))
    sts = "\n".join([method, "", "", "", "", ctype, "", "", "", "", "", ""]) + "\n" + canon + resource
    sig = base64.b64encode(hmac.new(KEY, sts.encode(), hashlib.sha256).digest()).decode()
    headers["Authorization"] = f"SharedKey {ACCOUNT}:{sig}"
    if ctype:
        headers["Content-Type"] = ctype
    url = f"{ep}/{ACCOUNT}{urllib.parse.quote(path)}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    r = urllib.request.Request(url, data=b"" if method == "PUT" else None, method=method, headers=headers)
    with urllib.request.urlopen(r) as resp:
        return resp.read(), dict(resp.headers)
if cmd == "create":
    req("PUT", "/" + container, {"restype": "container"})
else:
    data, _ = req("GET", "/" + container, {"comp": "list", "restype": "container"})
    out = {}
    for b in ET.fromstring(data).iter("Blob"):
        name = b.find("Name").text
        body, h = req("GET", f"/{container}/{name}")
        out[name] = {"sha256": hashlib.sha256(body).hexdigest(), "meta_sha256": h.get("x-ms-meta-sha256")}
    print(json.dumps(out))
"#;

/// The `azurite-blob` launcher: `PHYSIO_AZURITE` if set, else where `scripts/test`
/// installs it (`target/azurite`), else on `PATH`.
fn azurite_bin() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("PHYSIO_AZURITE") {
        return Some(p.into());
    }
    let local = common::repo_root().join("target/azurite/node_modules/.bin/azurite-blob");
    if local.is_file() {
        return Some(local);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("azurite-blob"))
            .find(|p| p.is_file())
    })
}

/// A running Azurite blob service; killed (and reaped) on drop.
struct Azurite {
    child: Child,
    endpoint: String,
}

impl Azurite {
    /// Starts Azurite (in-memory) on a free 127.0.0.1 port and creates `container`.
    fn start(bin: &Path, container: &str) -> Azurite {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--inMemoryPersistence", "--skipApiVersionCheck", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite");
        let az = Azurite {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "azurite did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        az.python("create", container);
        az
    }

    fn python(&self, cmd: &str, container: &str) -> Vec<u8> {
        let out = Command::new(python())
            .args([
                "-c",
                AZURE_PY,
                &self.endpoint,
                cmd,
                container,
                AZURITE_ACCOUNT_KEY,
            ])
            .output()
            .expect("run azure helper");
        assert!(
            out.status.success(),
            "azure helper failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Every blob of `container`: name → {sha256, meta_sha256}.
    fn blobs(&self, container: &str) -> serde_json::Value {
        serde_json::from_slice(&self.python("list", container)).expect("blob JSON")
    }

    /// `physio fetch … --out URL` pointed at this Azurite through object_store's
    /// standard emulator variables.
    fn fetch(&self, base: &str, out: &str) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("physio"));
        cmd.args([
            "fetch",
            "physio-demo",
            "--base-url",
            base,
            "--out",
            out,
            "--json",
        ])
        .env("AZURE_STORAGE_USE_EMULATOR", "true")
        .env("AZURITE_BLOB_STORAGE_URL", &self.endpoint)
        .env("PHYSIONET_USERNAME", "physio-user")
        .env("PHYSIONET_PASSWORD", PHYSIONET_SECRET);
        cmd
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn fetch_mirror_to_azurite_matches_bytes_and_reruns_transfer_nothing() {
    let Some(bin) = azurite_bin() else {
        assert!(
            std::env::var_os("PHYSIO_REQUIRE_AZURITE").is_none(),
            "PHYSIO_REQUIRE_AZURITE is set but azurite-blob was not found"
        );
        return;
    };
    let az = Azurite::start(&bin, "ctr");
    let files = tree_digests(&mirror_version_dir());
    let data_files = files.iter().filter(|(p, _)| p != "SHA256SUMS.txt").count() as u64;
    let first = run_json(&mut az.fetch(&mirror_base(), "az://ctr/pre"), 0);
    assert_eq!(first["fetched"].as_u64(), Some(data_files), "{first}");
    assert_eq!(
        first["dir"].as_str(),
        Some("az://ctr/pre/physio-demo/1.0.0")
    );
    let blobs = az.blobs("ctr");
    let blobs = blobs.as_object().expect("blobs");
    let mut names: Vec<_> = blobs.keys().cloned().collect();
    names.sort();
    let want: Vec<_> = files
        .iter()
        .map(|(p, _)| format!("pre/physio-demo/1.0.0/{p}"))
        .collect();
    assert_eq!(names, want, "exactly the mirror's files");
    for (p, sha) in &files {
        let blob = &blobs[&format!("pre/physio-demo/1.0.0/{p}")];
        assert_eq!(blob["sha256"].as_str(), Some(sha.as_str()), "{p} differs");
        if p != "SHA256SUMS.txt" {
            assert_eq!(
                blob["meta_sha256"].as_str(),
                Some(sha.as_str()),
                "{p} metadata"
            );
        }
    }
    let again = run_json(&mut az.fetch(&mirror_base(), "az://ctr/pre"), 0);
    assert_eq!(again["fetched"].as_u64(), Some(0), "{again}");
    assert_eq!(again["skipped"].as_u64(), Some(data_files), "{again}");
    let mut verify = Command::new(assert_cmd::cargo::cargo_bin("physio"));
    verify
        .args(["verify", "az://ctr/pre/physio-demo/1.0.0", "--json"])
        .env("AZURE_STORAGE_USE_EMULATOR", "true")
        .env("AZURITE_BLOB_STORAGE_URL", &az.endpoint);
    let report = run_json(&mut verify, 0);
    assert_eq!(report["ok"].as_u64(), Some(data_files), "{report}");
}

/// Issue 12: `physio sync` with `convert.out = s3://…` is incremental. Day 2 reads the
/// previous output's provenance back from the store, so after one upstream file changes
/// only its record is decoded (the other nine are reused), and the objects written are
/// byte for byte a fresh local conversion of the day-2 inputs; day 3, with nothing
/// changed, finds the output in the store and converts nothing.
#[test]
fn sync_into_s3_reconverts_only_changed_records_r12() {
    if !have_deps() {
        return;
    }
    let moto = Moto::start(false);
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    crate::sync::copy_tree(&common::repo_root().join("fixtures/mirror"), &mirror);
    let upstream = mirror.join("files/physio-demo/1.0.0");
    let config = tmp.path().join("sync.toml");
    std::fs::write(
        &config,
        format!(
            "[[dataset]]\nname = \"physio-demo\"\nout = \"data\"\n\n\
             [dataset.convert]\nout = \"s3://{BUCKET}/pq/\"\n"
        ),
    )
    .unwrap();
    let sync = || {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("physio"));
        cmd.arg("sync")
            .arg(&config)
            .env("PHYSIO_BASE_URL", format!("file://{}", mirror.display()));
        moto.env(&mut cmd, &moto.secret);
        let report = run_json(&mut cmd, 0);
        report["datasets"][0].clone()
    };

    let day1 = sync();
    assert_eq!(day1["convert"]["status"], "converted", "{day1:#}");
    assert_eq!(day1["convert"]["records_converted"], 10);
    assert_eq!(day1["convert"]["records_reused"], 0);

    let dat = upstream.join("generated/gen01.dat");
    let mut bytes = std::fs::read(&dat).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&dat, bytes).unwrap();
    crate::sync::reseal(&upstream);

    let day2 = sync();
    assert_eq!(day2["fetch"]["fetched"], 1, "{day2:#}");
    assert_eq!(day2["convert"]["status"], "converted", "{day2:#}");
    assert_eq!(day2["convert"]["records_converted"], 1, "{day2:#}");
    assert_eq!(
        day2["convert"]["converted_records"],
        serde_json::json!(["generated/gen01"])
    );
    assert_eq!(day2["convert"]["records_reused"], 9);

    // The store now holds exactly a fresh conversion of the day-2 inputs.
    let fresh = tmp.path().join("fresh");
    let out = convert_local_from(&tmp.path().join("data/physio-demo/1.0.0"), &fresh);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects = moto.inspect()["objects"].clone();
    let mut stored: Vec<(String, String)> = objects
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("pq/")?;
            Some((name.to_string(), v["sha256"].as_str()?.to_string()))
        })
        .collect();
    stored.sort();
    assert_eq!(stored, tree_digests(&fresh));

    let day3 = sync();
    assert_eq!(day3["fetch"]["fetched"], 0);
    assert_eq!(day3["convert"]["status"], "up_to_date", "{day3:#}");
}

/// Converts `input` locally into the directory `out`.
fn convert_local_from(input: &Path, out: &Path) -> std::process::Output {
    physio()
        .arg("convert")
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run local convert")
}
