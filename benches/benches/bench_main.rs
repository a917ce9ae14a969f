//! criterion benches: `cargo bench -p zkinfer-benches` (all), or with a filter, e.g.
//! `cargo bench -p zkinfer-benches --bench bench_main -- msm_ratio` (see `benchmarks/msm.rs`).

mod benchmarks;

criterion::criterion_main!(benchmarks::prove::benches, benchmarks::msm::benches);
