//! criterion benches: `cargo bench -p zkinfer-benches`.

mod benchmarks;

criterion::criterion_main!(benchmarks::prove::benches);
