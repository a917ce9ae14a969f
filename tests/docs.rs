//! The README's op table lists exactly the ops the importer's registry has.

#[test]
fn readme_op_table_matches_the_registry() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("## Supported ONNX ops").nth(1).expect("README has the op table");
    let mut documented: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with("| op |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_start_matches('|').split('|').next().unwrap_or("").trim())
        .collect();
    documented.sort_unstable();
    assert_eq!(documented, zkinfer_circuits::onnx::supported_ops());
}
