//! A moto server (the AWS emulator, pinned to 5.2.5) for the AWS tests and the AWS bench:
//! installed on first use into `target/moto-venv` (a lock file keeps two test binaries from
//! installing at once), started on a free loopback port, stopped by pid when dropped. A test
//! that cannot start moto fails; it never skips. Checks go through boto3 (which moto brings
//! along), so what the tests see of AWS does not depend on drydock's own SDK calls.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const MOTO: &str = "moto[server]==5.2.5";
pub const REGION: &str = "us-east-1";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The virtualenv holding moto, installed if it is not there yet.
pub fn venv() -> PathBuf {
    let target = repo().join("target");
    let venv = target.join("moto-venv");
    let ready = venv.join(".drydock-ready");
    std::fs::create_dir_all(&target).expect("create target/");
    let lock = File::create(target.join("moto-venv.lock")).expect("create target/moto-venv.lock");
    lock.lock().expect("lock target/moto-venv.lock");
    // The marker names the pinned version, so a pin change reinstalls; it is written last, so
    // an install that died half way is done again.
    if std::fs::read_to_string(&ready).ok().as_deref() != Some(MOTO) {
        let _ = std::fs::remove_dir_all(&venv);
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv target/moto-venv");
        run(
            Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check", MOTO]),
            "pip install moto[server]",
        );
        std::fs::write(&ready, MOTO).expect("write the moto marker");
    }
    drop(lock);
    venv
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running moto server.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    venv: PathBuf,
    /// The server's log: kept when a test fails, removed otherwise.
    log: PathBuf,
}

impl Moto {
    pub fn start() -> Moto {
        let venv = venv();
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let logs = repo().join("target/moto-logs");
        std::fs::create_dir_all(&logs).expect("create target/moto-logs");
        let log_path = logs.join(format!("moto-{port}.log"));
        let log = File::create(&log_path).expect("moto log file");
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}"), venv, log: log_path };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers(port) {
            assert!(Instant::now() < deadline, "moto_server did not answer on port {port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Forgets everything the server holds (`POST /moto-api/reset`).
    pub fn reset(&self) {
        let port = self.endpoint.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).expect("a port");
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to moto");
        s.write_all(b"POST /moto-api/reset HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n").expect("reset");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.") && answer.contains(" 200 "), "moto reset: {answer}");
    }

    /// The environment that points drydock (and boto3) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            // No profile files of whoever runs the tests.
            ("AWS_CONFIG_FILE", "/nonexistent/drydock-test-aws-config".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/drydock-test-aws-credentials".into()),
            // A run killed by a test leaves its state lock until its lease (2 s in
            // `aws_example`) ends: the next run waits for it rather than failing.
            ("DRYDOCK_LOCK_TIMEOUT", "60s".into()),
        ]
    }

    /// Runs a Python snippet with `ec2`, `asg`, `eks` and `s3` (path-style) boto3 clients on
    /// this server and `json` imported; what it prints with `out(value)` comes back as JSON.
    pub fn py(&self, script: &str) -> Value {
        let program = format!(
            "import base64, json, os, sys\nimport boto3\n\
             kw = dict(endpoint_url=os.environ['AWS_ENDPOINT_URL'], region_name=os.environ['AWS_REGION'],\n\
                       aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             ec2 = boto3.client('ec2', **kw)\nasg = boto3.client('autoscaling', **kw)\neks = boto3.client('eks', **kw)\n\
             import botocore.config\ns3 = boto3.client('s3', config=botocore.config.Config(s3={{'addressing_style': 'path'}}), **kw)\n\
             def out(v):\n    print(json.dumps(v, default=str))\n{script}\n"
        );
        let mut cmd = Command::new(self.venv.join("bin/python"));
        cmd.arg("-c").arg(program).envs(self.env());
        let o = cmd.output().expect("run python");
        assert!(
            o.status.success(),
            "python failed:\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8_lossy(&o.stdout);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("python printed no JSON ({e}):\n{text}"))
    }

    /// The state bucket of `examples/aws` ([`STATE_BUCKET`], versioned), a VPC with a subnet in
    /// each of three zones (a /20 each: moto puts every instance of a
    /// group in its first subnet, and the bench runs 500), a security group, and two Linux images
    /// moto knows (moto launches any image id, but drydock checks the image exists first).
    pub fn network(&self) -> Network {
        let v = self.py(
            "vpc = ec2.create_vpc(CidrBlock='10.0.0.0/16')['Vpc']['VpcId']\n\
             if 'acme-drydock-state' not in [b['Name'] for b in s3.list_buckets()['Buckets']]: s3.create_bucket(Bucket='acme-drydock-state')\n\
             s3.put_bucket_versioning(Bucket='acme-drydock-state', VersioningConfiguration={'Status': 'Enabled'})\n\
             subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f'10.0.{16 * i}.0/20', AvailabilityZone=f'us-east-1{z}')['Subnet']['SubnetId'] for i, z in enumerate('abc')]\n\
             sg = ec2.create_security_group(GroupName='nodes', Description='nodes', VpcId=vpc)['GroupId']\n\
             images = sorted(i['ImageId'] for i in ec2.describe_images(Owners=['amazon'])['Images'] if i.get('RootDeviceName') == '/dev/xvda' and i.get('Platform') != 'windows')\n\
             out({'subnets': subnets, 'sg': sg, 'images': images[:2]})",
        );
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().expect("a list").iter().map(|s| s.as_str().expect("a string").to_string()).collect()
        };
        let images = strings(&v["images"]);
        assert_eq!(images.len(), 2, "moto has two Linux images: {v}");
        Network { subnets: strings(&v["subnets"]), security_group: v["sg"].as_str().unwrap().to_string(), images }
    }

    /// Runs the drydock binary in `dir` against this server.
    pub fn drydock(&self, dir: &Path, args: &[&str], extra_env: &[(&str, String)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_drydock"))
            .current_dir(dir)
            .args(args)
            .envs(self.env())
            .envs(extra_env.iter().map(|(k, v)| (*k, v.clone())))
            .env("NO_COLOR", "1")
            .output()
            .expect("run drydock")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // By pid: this server only.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Whether something answers HTTP on the port.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(s.read(&mut buf), Ok(n) if n >= 5 && buf.starts_with(b"HTTP/"))
}

/// What the AWS example needs beyond moto's defaults.
pub struct Network {
    pub subnets: Vec<String>,
    pub security_group: String,
    /// Two image ids, for a rollout from one to the other.
    pub images: Vec<String>,
}

impl Network {
    /// `DRYDOCK_VAR_…` values for `examples/aws`.
    pub fn vars(&self, image: &str) -> Vec<(&'static str, String)> {
        vec![
            ("DRYDOCK_VAR_subnet_ids", serde_json::to_string(&self.subnets).unwrap()),
            ("DRYDOCK_VAR_security_group_ids", serde_json::to_string(&[&self.security_group]).unwrap()),
            ("DRYDOCK_VAR_image", image.to_string()),
        ]
    }
}

/// Where `examples/aws` keeps its state (`backend "s3"`, the default region): a bucket
/// [`Moto::network`] creates, with versioning.
pub const STATE_BUCKET: &str = "acme-drydock-state";
pub const STATE_KEY: &str = "clusters/prod/us-east-1.json";

impl Moto {
    /// The state `examples/aws` keeps in moto's S3, as S3 holds it.
    pub fn example_state(&self) -> Value {
        self.py(&format!("out(json.loads(s3.get_object(Bucket='{STATE_BUCKET}', Key='{STATE_KEY}')['Body'].read()))"))
    }
}

/// A copy of `examples/aws` in a temporary directory, its state lock's lease cut to 2 s (the
/// tests kill runs that hold it).
pub fn aws_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/aws"), dir.path());
    let main = dir.path().join("main.kcl");
    let text = std::fs::read_to_string(&main).unwrap();
    let patched = text.replacen("backend \"s3\" {", "backend \"s3\" {\n  lock_lease = 2s", 1);
    assert_ne!(text, patched, "examples/aws/main.kcl has no backend \"s3\" block");
    std::fs::write(&main, patched).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
