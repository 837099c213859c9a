//! Shared by the fuzz smoke tests (`crates/*/tests/fuzz_*.rs`, through `#[path]`): replaying a
//! target's committed corpus through its body, and the proptest settings they use.

use std::path::PathBuf;

/// Runs every file of `fuzz/corpus/<target>/` through `run`, in name order; a panic names the
/// file. Returns how many files ran. A missing or empty corpus fails: it is committed.
pub fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
        if let Err(panic) = outcome {
            eprintln!("corpus file {} failed", file.display());
            std::panic::resume_unwind(panic);
        }
    }
    files.len()
}

/// `cases` generated inputs, no regression files written (the committed corpora are the
/// regression set), no forking.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
