//! Batch settlement end to end, as users run it: N jobs opened on the escrow (anvil, EIP-170
//! enforced), N proofs made with `zkinfer prove --for-aggregation`, each bound to its own payee
//! and job, folded by `zkinfer aggregate`, its verifier made by `zkinfer solidity
//! --aggregation`, and one `submitBatch` that pays each payee its job's price, to the wei. The
//! verifier rejects flipped proof bytes, changed instances and instances plus r; the escrow
//! rejects a tampered aggregated proof and moves no money.
//!
//! Minutes and gigabytes (an aggregation key and proof; about 6 GiB for N = 1 at k = 20), so it
//! is not part of the default test run: `scripts/aggregation.sh N` runs it (`ZKINFER_AGG_N`
//! proofs, default 2; `ZKINFER_AGG_K`, default 22 (the test command runs 20); `ZKINFER_AGG_FAN_IN`, default 2: more
//! proofs than that make a tree; `ZKINFER_AGG_MODEL`, default `examples/tiny`, any example
//! directory; `ZKINFER_AGG_FIXTURE=DIR` writes what tests/wrapped_settlement.rs checks).

#![allow(clippy::unwrap_used)]

mod tamper;

use std::path::{Path, PathBuf};
use std::process::Command;

use alloy::primitives::U256;
use zkinfer_circuits::circuit::salted_commitment;
use zkinfer_circuits::data::InputData;
use zkinfer_protocol::{Commitment, Salt};
use zkinfer_prover::{ModelDir, ProofEnvelope};
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK, EIP170_CODE_SIZE_LIMIT};
use zkinfer_verifier_contract::codegen::{aggregation_verifier_solidity, verifier_solidity};
use zkinfer_verifier_contract::escrow::{JobState, OpenJob, Submission};
use zkinfer_verifier_contract::market::{escrow_code, EscrowTerms};
use zkinfer_verifier_contract::solc::Toolchain;
use zkinfer_verifier_contract::verifier::CompiledVerifier;

const OWNER: usize = 0;
const CUSTOMER: usize = 1;
const STRANGER: usize = 9;

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The binary under test (`ZKINFER_BIN` runs a copy, so that a long run survives a rebuild).
fn bin() -> String {
    std::env::var("ZKINFER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_zkinfer").to_string())
}

fn ok(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).output().expect("runs");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// As [`ok`], printing what the command said on stderr (its steps and their times) and
/// returning it too.
fn run(args: &[&str]) -> (String, String) {
    let out = Command::new(bin()).args(args).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("{err}");
    assert!(out.status.success(), "{args:?} failed");
    (String::from_utf8(out.stdout).unwrap(), err)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
#[ignore = "minutes and gigabytes: run by scripts/aggregation.sh"]
fn an_aggregated_proof_settles_each_job_to_its_own_payee_and_nothing_tampered_passes() {
    let (n, k) = (env_or("ZKINFER_AGG_N", 2), env_or("ZKINFER_AGG_K", 22));
    let tmp = tempfile::tempdir().unwrap();
    // Any example directory with model.onnx, calibration.json and input.json.
    let model_name = std::env::var("ZKINFER_AGG_MODEL").unwrap_or_else(|_| "examples/tiny".to_string());
    let model = tmp.path().join("model");
    let ex = repo(&model_name);
    ok(&["compile", s(&ex.join("model.onnx")), "-o", s(&model), "--calibration", s(&ex.join("calibration.json"))]);
    ok(&["setup", s(&model), "--dev-srs"]);
    let loaded = ModelDir::new(&model).load().unwrap();
    let input = ex.join("input.json");
    let q = loaded.model.quantize_inputs(&InputData::from_json(&std::fs::read_to_string(&input).unwrap()).unwrap().input_data).unwrap();

    let tc = Toolchain::in_repo().expect("run scripts/setup.sh");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
    let escrow = rt.block_on(chain.deployer(OWNER).deploy(escrow_code(&tc, EscrowTerms::default()).unwrap())).unwrap();
    let client = |i: usize| chain.escrow(escrow, i).unwrap();
    let single =
        CompiledVerifier::build(&tc, &verifier_solidity(&loaded.params, &loaded.vk, loaded.model.num_instances()).unwrap()).unwrap();
    let (single_at, single_parts) = rt.block_on(single.deploy(&chain.deployer(OWNER))).unwrap();
    let n_inst = loaded.model.num_instances() as u32;
    let model_id = rt.block_on(client(OWNER).register_model(single_at, &single_parts, loaded.bindings.model_hash, n_inst)).unwrap();
    let chain_id = rt.block_on(client(OWNER).chain_id()).unwrap();

    // N jobs of one customer, each with its own salt and price; executors 2.. each stake.
    let payees: Vec<usize> = (0..n).map(|i| 2 + i % 3).collect();
    for p in 2..2 + n.min(3) {
        rt.block_on(client(p).stake(U256::from(10u64).pow(U256::from(16)))).unwrap();
    }
    let price = |i: usize| U256::from(10u64).pow(U256::from(17)) + U256::from(i);
    let mut jobs = Vec::new();
    let mut proofs = Vec::new();
    for (i, &payee) in payees.iter().enumerate() {
        let salt = Salt::random();
        let commitment = Commitment::from(salted_commitment(&q, salt.to_fr(), loaded.model.settings.value_bits));
        let deadline = rt.block_on(chain.timestamp()).unwrap() + 7200;
        let open = OpenJob {
            model: model_id,
            commitment,
            deadline,
            allow: vec![],
            token: None,
            price: price(i),
            min_bond: U256::from(1u64),
            claimable: false,
            optimistic: None,
        };
        let job = rt.block_on(client(CUSTOMER).open_job(&open)).unwrap();
        let proof = tmp.path().join(format!("p{i}.zkp"));
        let payee = format!("{:#x}", chain.account(payee));
        let (cid, esc, jid) = (chain_id.to_string(), format!("{escrow:#x}"), job.0.to_string());
        ok(&[
            "prove",
            s(&model),
            "--input",
            s(&input),
            "-o",
            s(&proof),
            "--for-aggregation",
            "--salt",
            &salt.to_string(),
            "--payee",
            &payee,
            "--chain-id",
            &cid,
            "--escrow",
            &esc,
            "--escrow-job",
            &jid,
        ]);
        jobs.push(job);
        proofs.push(proof);
    }

    let (keys, batch) = (tmp.path().join("keys"), tmp.path().join("batch.zkb"));
    let mut args: Vec<&str> = vec!["aggregate", s(&model), "--proofs"];
    args.extend(proofs.iter().map(|p| s(p)));
    let (kk, leaf_k, fan_in) = (k.to_string(), env_or("ZKINFER_AGG_LEAF_K", 20).to_string(), env_or("ZKINFER_AGG_FAN_IN", 2).to_string());
    args.extend(["-o", s(&batch), "--keys", s(&keys), "--k", &kk, "--leaf-k", &leaf_k, "--fan-in", &fan_in]);
    let srs = std::env::var("ZKINFER_AGG_SRS").unwrap_or_default();
    if !srs.is_empty() {
        args.extend(["--srs", &srs]);
    }
    let (aggregated, aggregate_log) = run(&args);
    println!("{aggregated}");
    assert!(ok(&["verify", s(&keys), s(&batch)]).starts_with("VALID"));

    let sol = tmp.path().join("sol");
    println!("{}", ok(&["solidity", "--aggregation", s(&keys), "-o", s(&sol)]));
    // The verifier the command wrote, rebuilt here from the batch key as a deployer would.
    let key = zkinfer_aggregate::BatchKey::open(&keys).unwrap();
    let source = aggregation_verifier_solidity(&key.params, &key.vk, key.record.num_instances()).unwrap();
    let verifier = CompiledVerifier::build(&tc, &source).unwrap();
    let written = std::fs::read_to_string(sol.join("Verifier.bin")).unwrap();
    assert_eq!(written.trim(), hex::encode(&verifier.verifier.bytecode), "`solidity --aggregation` wrote another verifier");
    assert!(verifier.largest_contract() <= EIP170_CODE_SIZE_LIMIT);
    let (at, parts) = rt.block_on(verifier.deploy(&chain.deployer(OWNER))).unwrap();
    let calldata = hex::decode(ok(&["calldata", s(&batch)]).trim().trim_start_matches("0x")).unwrap();
    let mined = rt.block_on(chain.transact(OWNER, at, calldata.clone(), U256::ZERO, Some(3_000_000))).unwrap();
    assert!(mined.success);
    println!(
        "aggregated verifier ({} contract(s), largest {} B): {} gas for {n} job(s) ({} per job), {}",
        parts.len() + 1,
        verifier.largest_contract(),
        mined.gas_used,
        mined.gas_used / n as u64,
        chain.hardfork
    );
    let instances = 12 + n * n_inst as usize;
    let rejects = |data: Vec<u8>| rt.block_on(chain.call(at, data, 3_000_000)).is_err();
    // Every proof byte flipped, every instance changed and every instance plus r.
    for (what, bad) in tamper::tampered(&calldata, instances) {
        assert!(rejects(bad), "{what} was accepted");
    }

    // The escrow: the customer trusts the batch verifier; a tampered aggregated proof moves
    // nothing; the valid one, sent by a stranger, pays each job's own payee its price.
    let batch_id = rt.block_on(client(STRANGER).register_batch_verifier(at, &parts, &vec![model_id; n])).unwrap();
    // Before trusting it, the customer checks the registered verifier against its own model
    // directory and SRS: the key's verifying key regenerated, the verifier generated from it,
    // its code hash and models compared with the escrow's record.
    let (esc, id) = (format!("{escrow:#x}"), batch_id.to_string());
    let checked_sol = tmp.path().join("checked");
    let rpc = chain.endpoint();
    let check = |keys: &Path, id: &str| {
        let mut args = vec!["solidity", "--aggregation", s(keys), "-o", s(&checked_sol), "--members", s(&model), "--dev-srs"];
        args.extend(["--batch-id", id, "--escrow", &esc, "--rpc-url", &rpc]);
        Command::new(bin()).args(&args).output().expect("runs")
    };
    let out = check(&keys, &id);
    assert!(out.status.success(), "the check refused the honest key: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CHECKED: batch verifier"), "no CHECKED line");
    assert_eq!(std::fs::read(checked_sol.join("Verifier.bin")).unwrap(), std::fs::read(sol.join("Verifier.bin")).unwrap());
    // A registration whose code is another verifier (here the model's own) is refused.
    let other = rt.block_on(client(STRANGER).register_batch_verifier(single_at, &single_parts, &vec![model_id; n])).unwrap();
    let out = check(&keys, &other.to_string());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("not this key's verifier"), "a foreign registration passed: {said}");
    // A key whose verifying key is not what its recorded shape and the members give is refused
    // (here: its record claims a smaller lookup table than its vk was made with).
    let forged = tmp.path().join("forged");
    std::fs::create_dir(&forged).unwrap();
    for f in ["params.srs", "vk.bin"] {
        std::fs::hard_link(keys.join(f), forged.join(f)).unwrap();
    }
    let mut record: serde_json::Value = serde_json::from_slice(&std::fs::read(keys.join("batch.json")).unwrap()).unwrap();
    if record["fan_in"].is_null() {
        let bits = record["config"]["lookup_bits"].as_u64().unwrap();
        record["config"]["lookup_bits"] = (bits - 1).into();
        std::fs::write(forged.join("batch.json"), serde_json::to_vec(&record).unwrap()).unwrap();
        let out = check(&forged, &id);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && said.contains("do not trust"), "a forged key passed: {said}");
    }
    rt.block_on(client(CUSTOMER).trust_batch_verifier(batch_id, true)).unwrap();
    let words: Vec<U256> = (0..instances).map(|i| U256::from_be_slice(&calldata[i * 32..i * 32 + 32])).collect();
    let proof = calldata[instances * 32..].to_vec();
    let held = rt.block_on(chain.balance(escrow)).unwrap();
    let mut tampered = proof.clone();
    tampered[proof.len() / 3] ^= 1;
    assert!(rt.block_on(client(STRANGER).submit_batch_raw(batch_id, &jobs, words.clone(), tampered, 5_000_000)).is_err());
    assert_eq!(rt.block_on(chain.balance(escrow)).unwrap(), held, "a tampered aggregated proof moved money");
    let before: Vec<U256> = (0..10).map(|i| rt.block_on(chain.balance(chain.account(i))).unwrap()).collect();
    let paid = rt.block_on(client(STRANGER).submit_batch_raw(batch_id, &jobs, words, proof, 5_000_000)).unwrap();
    println!("submitBatch: {} gas for {n} job(s), {} per job ({})", paid.gas_used, paid.gas_used / n as u64, chain.hardfork);
    let mut expected = before.clone();
    for (i, &p) in payees.iter().enumerate() {
        expected[p] += price(i);
    }
    expected[STRANGER] -= paid.fee;
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(rt.block_on(chain.balance(chain.account(i))).unwrap(), *want, "account {i}");
    }
    for (i, job) in jobs.iter().enumerate() {
        let j = rt.block_on(client(OWNER).job(*job)).unwrap();
        assert_eq!((j.state, j.executor), (JobState::Paid, chain.account(payees[i])));
    }

    // The same model's job settled alone (a Keccak-transcript proof, `submitProof`): what a
    // batch is compared with.
    let salt = Salt::random();
    let commitment = Commitment::from(salted_commitment(&q, salt.to_fr(), loaded.model.settings.value_bits));
    let deadline = rt.block_on(chain.timestamp()).unwrap() + 7200;
    let open = OpenJob {
        model: model_id,
        commitment,
        deadline,
        allow: vec![],
        token: None,
        price: price(0),
        min_bond: U256::from(1u64),
        claimable: false,
        optimistic: None,
    };
    let job = rt.block_on(client(CUSTOMER).open_job(&open)).unwrap();
    let single_proof = tmp.path().join("single.zkp");
    let (payee, cid, esc, jid) = (format!("{:#x}", chain.account(2)), chain_id.to_string(), format!("{escrow:#x}"), job.0.to_string());
    ok(&[
        "prove",
        s(&model),
        "--input",
        s(&input),
        "-o",
        s(&single_proof),
        "--salt",
        &salt.to_string(),
        "--payee",
        &payee,
        "--chain-id",
        &cid,
        "--escrow",
        &esc,
        "--escrow-job",
        &jid,
    ]);
    let env = ProofEnvelope::from_bytes(&std::fs::read(&single_proof).unwrap()).unwrap();
    let c = client(STRANGER);
    let tx = rt.block_on(c.send_submit_proof(job, &env, 5_000_000)).unwrap();
    let alone = Submission::from(&rt.block_on(c.wait_receipt(tx, std::time::Duration::from_secs(60))).unwrap().unwrap());
    assert!(alone.success);
    println!("submitProof of one job alone: {} gas; a batch of {n}: {} per job", alone.gas_used, paid.gas_used / n as u64);

    if let Ok(dir) = std::env::var("ZKINFER_AGG_REPORT") {
        let (secs, peak, bytes) = aggregate_figures(&aggregated);
        let report = serde_json::json!({
            "n": n, "k": k, "leaf_k": env_or("ZKINFER_AGG_LEAF_K", 20), "fan_in": env_or("ZKINFER_AGG_FAN_IN", 2), "model": model_name,
            "key_seconds": key_seconds(&aggregate_log), "aggregate_seconds": secs, "peak_gib": peak, "proof_bytes": bytes,
            "verifier_contracts": parts.len() + 1, "verifier_largest_bytes": verifier.largest_contract(), "verifier_total_bytes": verifier.total_code(),
            "verify_gas": mined.gas_used, "submit_batch_gas": paid.gas_used, "submit_proof_gas": alone.gas_used,
            "hardfork": chain.hardfork,
        });
        std::fs::create_dir_all(&dir).unwrap();
        // k = 22 is the plot's series; another k keeps its own file beside it.
        let name = if k == 22 { format!("aggregation_n{n}.json") } else { format!("aggregation_n{n}_k{k}.json") };
        std::fs::write(Path::new(&dir).join(name), serde_json::to_vec_pretty(&report).unwrap()).unwrap();
        // The aggregation SRS, for the next run's ZKINFER_AGG_SRS (generating it takes minutes).
        let kept = Path::new(&dir).join(format!("kzg{k}.srs"));
        if !kept.exists() {
            std::fs::copy(keys.join("params.srs"), kept).unwrap();
        }
    }
    // The fixture tests/wrapped_settlement.rs checks on every run: the batch key's record and
    // verifying key (not its SRS or proving key), the aggregated proof and the verifier written.
    if let Ok(dir) = std::env::var("ZKINFER_AGG_FIXTURE") {
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        for (from, to) in [(keys.join("batch.json"), "batch.json"), (keys.join("vk.bin"), "vk.bin"), (batch.clone(), "batch.zkb")] {
            std::fs::copy(from, dir.join(to)).unwrap();
        }
        std::fs::copy(sol.join("Verifier.bin"), dir.join("Verifier.bin")).unwrap();
    }
}

/// Seconds, peak GiB and proof bytes from `aggregate`'s last line.
fn aggregate_figures(stdout: &str) -> (f64, f64, u64) {
    let line = stdout.lines().find(|l| l.starts_with("aggregated")).unwrap();
    let after = |tag: &str| {
        line.split(tag).nth(1).unwrap().trim_start().split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap().to_string()
    };
    (after(" in ").parse().unwrap(), after("peak memory").parse().unwrap(), after("):").parse().unwrap())
}

/// The seconds `aggregate` spent making its key, from its stderr.
fn key_seconds(stderr: &str) -> f64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("batch key made in "))
        .and_then(|r| r.split('s').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
