//! Test support: damage an MSM tables cache (`*.tables` beside an SRS) where its read checks
//! do not look. Shared by the prover's tests and the CLI's.

use std::collections::HashSet;
use std::path::Path;

/// The MSM tables caches beside a model directory's SRS copies (`DIR/srs/*.tables`).
pub(crate) fn tables_files(model_dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(model_dir.join("srs"))
        .expect("the model directory has an srs/ folder")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tables"))
        .collect()
}

/// Overwrites every higher-window entry of the Lagrange table that the read's sample does not
/// check with the base it multiplies, and returns how many entries it changed. The cache still
/// loads; anything committed through it is wrong.
pub(crate) fn corrupt_unsampled_higher_windows(path: &Path) -> usize {
    let mut bytes = std::fs::read(path).expect("reads the tables file");
    let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as usize;
    // Magic and version (8 bytes), the monomial table (a 12-byte header, n × windows points),
    // then the Lagrange table, through which the fixed columns are committed.
    let (c, windows, n) = (word(&bytes, 8), word(&bytes, 12), word(&bytes, 16));
    let lagrange = 8 + 12 + n * windows * 64;
    assert_eq!((word(&bytes, lagrange), word(&bytes, lagrange + 4), word(&bytes, lagrange + 8)), (c, windows, n));
    let points = lagrange + 12;
    // The read's sample: entry (i, j) against (i, j - 1) for 64 pairs.
    let mut kept = HashSet::new();
    for t in 0..64usize {
        let (i, j) = ((t * 7919) % n, 1 + t % (windows - 1));
        kept.extend([(i, j), (i, j - 1)]);
    }
    let mut corrupted = 0;
    for i in 0..n {
        let base: Vec<u8> = bytes[points + i * windows * 64..][..64].to_vec();
        for j in (1..windows).filter(|&j| !kept.contains(&(i, j))) {
            bytes[points + (i * windows + j) * 64..][..64].copy_from_slice(&base);
            corrupted += 1;
        }
    }
    assert!(corrupted > n, "most higher-window entries corrupted");
    std::fs::write(path, &bytes).expect("writes the tables file");
    corrupted
}
