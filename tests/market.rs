//! `zkinfer coordinator` as a process: jobs submitted over HTTP survive a kill -9 and a
//! restart on the same SQLite file, with no job lost or duplicated.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// Starts the coordinator on a free port; returns the process and its address.
fn start(db: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkinfer"))
        .args(["coordinator", "--listen", "127.0.0.1:0", "--database-url", db, "--api-key", "alice:key-alice", "--model", "mlp:4"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("prints its address");
    let addr = line.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).expect("an address").to_string();
    (child, addr)
}

/// One HTTP/1.1 request; returns the status code and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connects");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nx-api-key: key-alice\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("sends");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("reads");
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("a status line");
    (status, resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

#[test]
fn queued_jobs_survive_kill_9_and_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("coordinator.db").display());
    let (mut first, addr) = start(&db);
    let job = r#"{"model_id": "mlp", "input": [0.1, 0.2, 0.3, 0.4], "deadline_s": 3600}"#;
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let (status, body) = http(&addr, "POST", "/v1/jobs", job);
            assert_eq!(status, 201, "{body}");
            body
        })
        .collect();
    assert!(ids.iter().all(|b| b.contains("\"state\":\"queued\"")));
    let (status, body) = http(&addr, "POST", "/v1/jobs", r#"{"model_id": "mlp", "input": [1.0], "deadline_s": 60}"#);
    assert_eq!(status, 400);
    assert!(body.contains("\"code\":\"input_length\""), "{body}");
    first.kill().expect("kill -9"); // SIGKILL: no shutdown path runs
    first.wait().expect("reaped");

    let (mut second, addr) = start(&db);
    for id in 1..=3 {
        let (status, body) = http(&addr, "GET", &format!("/v1/jobs/{id}"), "");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"state\":\"queued\""), "job {id}: {body}");
    }
    let (status, _) = http(&addr, "GET", "/v1/jobs/4", "");
    assert_eq!(status, 404, "no job was duplicated");
    second.kill().expect("kill");
    second.wait().expect("reaped");
}
