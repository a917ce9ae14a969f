//! `zkinfer coordinator` and `zkinfer executor` as processes: a job goes from submission over
//! HTTP to a verified proof; an executor killed mid-proof loses its lease and the job is
//! re-dispatched to the other one and proved once; jobs survive a coordinator kill -9.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_zkinfer");

/// Kills its processes when dropped (also when a test fails).
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn example(f: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/mlp").join(f)
}

/// Compiles and sets up the shipped MLP in `dir`.
fn mlp_dir(dir: &Path) -> String {
    let d = dir.join("mlp");
    let cal = example("calibration.json");
    for args in [
        vec!["compile", example("model.onnx").to_str().unwrap(), "-o", d.to_str().unwrap(), "--calibration", cal.to_str().unwrap()],
        vec!["setup", d.to_str().unwrap(), "--dev-srs"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    format!("mlp:{}", d.display())
}

/// Starts the coordinator on a free port; returns the process and its address.
fn coordinator(db: &str, model: &str, lease_secs: &str) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--database-url", db, "--api-key", "alice:key-alice", "--model", model])
        .args(["--lease-secs", lease_secs, "--long-poll-secs", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).expect("an address").to_string();
    (child, addr)
}

/// Two fixed test keys.
const KEYS: [&str; 2] = [
    "0x0101010101010101010101010101010101010101010101010101010101010101",
    "0x0202020202020202020202020202020202020202020202020202020202020202",
];

/// An executor's name: its key's address, lowercase 0x-hex.
fn address(key: &str) -> String {
    let signer: alloy::signers::local::PrivateKeySigner = key.parse().unwrap();
    format!("{:#x}", signer.address())
}

fn executor(addr: &str, key: &str, model: &str) -> Child {
    Command::new(BIN)
        .args(["executor", "--coordinator", &format!("http://{addr}"), "--key", key, "--model", model, "--heartbeat-secs", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// One HTTP/1.1 request; returns the status code and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nx-api-key: key-alice\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end");
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("a status line");
    let mut body = resp[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
    out
}

fn job(addr: &str, id: i64) -> Value {
    let (status, body) = http(addr, "GET", &format!("/v1/jobs/{id}"), "");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn wait_for(addr: &str, id: i64, state: &str, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let j = job(addr, id);
        if j["state"] == state {
            return j;
        }
        assert!(start.elapsed() < limit, "job {id} never reached {state}: {j}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn submit(addr: &str) -> i64 {
    let input = std::fs::read_to_string(example("input.json")).unwrap();
    let values = &serde_json::from_str::<Value>(&input).unwrap()["input_data"][0];
    let (status, body) = http(addr, "POST", "/v1/jobs", &format!(r#"{{"model_id": "mlp", "input": {values}, "deadline_s": 3600}}"#));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice::<Value>(&body).unwrap()["job_id"].as_i64().unwrap()
}

#[test]
fn an_executor_killed_mid_proof_loses_the_job_to_the_other_and_it_is_proved_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = mlp_dir(dir.path());
    let db = format!("sqlite:{}", dir.path().join("coordinator.db").display());
    let (c, addr) = coordinator(&db, &model, "3");
    let mut procs = Procs(vec![c, executor(&addr, KEYS[0], &model), executor(&addr, KEYS[1], &model)]);
    let id = submit(&addr);
    let proving = wait_for(&addr, id, "proving", Duration::from_secs(60));
    let holder = proving["executor"].as_str().unwrap().to_string();
    let victim = 1 + KEYS.iter().position(|k| address(k) == holder).unwrap_or_else(|| panic!("{holder} is not a test executor"));
    procs.0[victim].kill().unwrap(); // SIGKILL mid-proof: no goodbye, its lease just stops
    let proved = wait_for(&addr, id, "proved", Duration::from_secs(180));
    assert_ne!(proved["executor"].as_str(), Some(holder.as_str()), "{proved}");
    assert_eq!(proved["attempts"], 2);
    let states: Vec<&str> = proved["events"].as_array().unwrap().iter().map(|e| e[0].as_str().unwrap()).collect();
    assert_eq!(states, ["queued", "assigned", "proving", "queued", "assigned", "proving", "proved"]);
    // An auditor downloads the proof and checks it offline against the model.
    let (status, proof) = http(&addr, "GET", &format!("/v1/jobs/{id}/proof"), "");
    assert_eq!(status, 200);
    let file = dir.path().join("job.zkp");
    std::fs::write(&file, proof).unwrap();
    let model_dir = model.trim_start_matches("mlp:");
    let out = Command::new(BIN).args(["verify", model_dir, file.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn queued_jobs_survive_a_coordinator_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let model = mlp_dir(dir.path());
    let db = format!("sqlite:{}", dir.path().join("coordinator.db").display());
    let (first, addr) = coordinator(&db, &model, "60");
    let mut procs = Procs(vec![first]);
    let ids: Vec<i64> = (0..3).map(|_| submit(&addr)).collect();
    assert_eq!(ids, [1, 2, 3]);
    let (status, body) = http(&addr, "POST", "/v1/jobs", r#"{"model_id": "mlp", "input": [1.0], "deadline_s": 60}"#);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("\"code\":\"input_length\""));
    procs.0[0].kill().unwrap(); // SIGKILL: no shutdown path runs
    procs.0[0].wait().unwrap();
    let (second, addr) = coordinator(&db, &model, "60");
    procs.0.push(second);
    for id in ids {
        assert_eq!(job(&addr, id)["state"], "queued");
    }
    assert_eq!(http(&addr, "GET", "/v1/jobs/4", "").0, 404, "no job was duplicated");
}
