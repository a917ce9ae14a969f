//! Runs the CUDA kernels on the CPU: `msm.cu` built as host C++ (the CUDA keywords defined
//! away, each kernel called once per thread index) by the system C++ compiler, fed by the same
//! host plan as the GPU path. This checks the kernels' field and curve arithmetic and the
//! host's combination without a GPU; only the driver calls are left untested.

use std::path::Path;
use std::process::Command;

use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_proofs::halo2curves::ff::Field;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::plan::{finish, plan, Plan, SEGMENT};
use super::KERNELS;
use crate::msm::{MsmBackend, NaiveMsm};

/// Reads the plan from a file, runs the three kernels thread by thread, writes the output.
const HARNESS: &str = r#"
#include <cstdio>
#include <vector>
struct Dim { unsigned x; };
static Dim blockIdx, threadIdx, blockDim;
#define __global__
#define __device__
#define __constant__
#define __forceinline__ inline
#include "msm.cu"

static std::vector<u32> read_vec(FILE* f) {
    u32 n = 0;
    if (fread(&n, 4, 1, f) != 1) return {};
    std::vector<u32> v(n);
    if (n && fread(v.data(), 4, n, f) != n) v.clear();
    return v;
}

static void launch(u32 threads, void (*body)()) {
    blockDim.x = 1;
    threadIdx.x = 0;
    for (u32 t = 0; t < threads; t++) { blockIdx.x = t; body(); }
}

static std::vector<u32> bases, offsets, entries, sums, out;
static u32 total, per_window, windows, seg;

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    FILE* f = fopen(argv[1], "rb");
    if (!f) return 3;
    std::vector<u32> header = read_vec(f);
    bases = read_vec(f); offsets = read_vec(f); entries = read_vec(f);
    fclose(f);
    if (header.size() != 3) return 4;
    per_window = header[0]; windows = header[1]; seg = header[2];
    total = per_window * windows;
    u32 segs = (per_window + seg - 1) / seg;
    sums.assign((size_t)total * 24, 0);
    out.assign((size_t)windows * segs * 48, 0);
    launch((u32)(bases.size() / 8), [] { to_montgomery(bases.data(), (u32)(bases.size() / 8)); });
    launch(total, [] { bucket_sums(bases.data(), offsets.data(), entries.data(), sums.data(), total); });
    launch(windows * segs, [] { bucket_reduce(sums.data(), out.data(), per_window, windows, seg); });
    FILE* o = fopen(argv[2], "wb");
    if (!o || fwrite(out.data(), 4, out.size(), o) != out.size()) return 5;
    fclose(o);
    return 0;
}
"#;

fn write_vec(buf: &mut Vec<u8>, v: &[u32]) {
    buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
    for x in v {
        buf.extend_from_slice(&x.to_le_bytes());
    }
}

/// Builds the harness, or None (with the reason printed) when there is no C++ compiler.
fn build(dir: &Path) -> Option<std::path::PathBuf> {
    std::fs::write(dir.join("msm.cu"), KERNELS).ok()?;
    std::fs::write(dir.join("harness.cpp"), HARNESS).ok()?;
    let exe = dir.join("harness");
    let out = Command::new("c++").args(["-std=c++17", "-O2", "-o"]).arg(&exe).arg(dir.join("harness.cpp")).output();
    match out {
        Ok(o) if o.status.success() => Some(exe),
        Ok(o) => panic!("the kernels do not build as host C++:\n{}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            eprintln!("SKIPPED: no C++ compiler to build the kernels for the host ({e})");
            None
        }
    }
}

fn run(exe: &Path, dir: &Path, plan: &Plan) -> G1 {
    let mut input = Vec::new();
    write_vec(&mut input, &[plan.buckets as u32, plan.windows as u32, SEGMENT as u32]);
    write_vec(&mut input, &plan.bases);
    write_vec(&mut input, &plan.offsets);
    write_vec(&mut input, &plan.entries);
    let (inp, outp) = (dir.join("in.bin"), dir.join("out.bin"));
    std::fs::write(&inp, input).expect("write input");
    let status = Command::new(exe).arg(&inp).arg(&outp).status().expect("run harness");
    assert!(status.success(), "harness failed: {status}");
    let bytes = std::fs::read(&outp).expect("read output");
    let reduced: Vec<u32> = bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(reduced.len(), plan.reduce_threads() * 48);
    finish(plan, &reduced)
}

#[test]
fn kernels_run_on_the_host_and_match_the_naive_msm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(exe) = build(dir.path()) else { return };
    let mut rng = ChaCha20Rng::seed_from_u64(0x6375);
    let p = G1Affine::random(&mut rng);
    for n in [1usize, 2, 3, 17, 64, 300, 1500] {
        let mut bases: Vec<G1Affine> = (0..n).map(|_| G1Affine::random(&mut rng)).collect();
        let mut scalars: Vec<Fr> = (0..n).map(|_| Fr::random(&mut rng)).collect();
        // Repeated bases and small scalars: doublings and cancellations inside buckets.
        for i in (0..n).step_by(5) {
            bases[i] = if rng.gen() { p } else { -p };
            scalars[i] = Fr::from(rng.gen_range(0..4u64));
        }
        if n > 2 {
            scalars[1] = -Fr::ONE;
            scalars[2] = Fr::ZERO;
        }
        let expected = NaiveMsm.msm(&scalars, &bases).expect("naive");
        assert_eq!(run(&exe, dir.path(), &plan(&scalars, &bases)), expected, "n = {n}");
    }
}
