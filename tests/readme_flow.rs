//! The README's "A customer's job, by hand" block, run exactly as written (in a scratch
//! directory, with the repository's `examples/` and `verifier-contract/` linked in, and free
//! ports in place of 8545 and the coordinator's default 8080): a chain, the contracts, a
//! coordinator and an executor, then `zkinfer job submit`, `status` and `proof`.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_zkinfer");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The bash block under the README heading `heading`.
fn readme_block(heading: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split(heading).nth(1).unwrap_or_else(|| panic!("README has no `{heading}`"));
    let block = section.split("```bash\n").nth(1).expect("a bash block");
    block.split("```").next().unwrap().to_string()
}

#[test]
fn the_readmes_customer_flow_runs_as_written() {
    let script = readme_block("### A customer's job, by hand");
    assert!(script.contains("zkinfer job submit") && script.contains("zkinfer job status") && script.contains("zkinfer job proof"));
    let (anvil_port, coordinator_port) = (free_port(), free_port());
    let script = script.replace("8545", &anvil_port.to_string());
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for link in ["examples", "verifier-contract"] {
        std::os::unix::fs::symlink(root.join(link), dir.path().join(link)).unwrap();
    }
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let coordinator = format!("127.0.0.1:{coordinator_port}");
    // Its own process group, so that whatever the script leaves running can be stopped.
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(dir.path())
            .env("PATH", path)
            .env("ZKINFER_LISTEN", &coordinator)
            .env("ZKINFER_COORDINATOR", format!("http://{coordinator}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let pgid = child.id();
    let out = child.wait_with_output().unwrap();
    let _ = Command::new("kill").args(["-9", "--", &format!("-{pgid}")]).stderr(Stdio::null()).status();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the README's block failed:\n{stdout}\n{stderr}");
    assert!(stdout.lines().any(|l| l.trim() == "1"), "job submit prints the job id:\n{stdout}");
    assert!(stdout.contains("job 1 (mlp): settled") && stdout.contains("paid 100000000000000000 wei to"), "{stdout}");
    assert!(stdout.contains("VALID") && stdout.contains("binds its input commitment"), "{stdout}");
    assert!(dir.path().join("out/hand/job1.zkp").exists());
}
