//! The library alone: a Rust project that depends on `taskfarm_worker` with
//! `default-features = false` compiles none of the command-line tool's
//! dependencies. Checked on the dependency graph that cargo resolves for
//! this package, with and without the default `cli` feature (so the check
//! would see them if the feature stopped gating them).

use std::process::Command;

/// What only the command-line tool `taskfarm` needs.
const CLI_ONLY: [&str; 5] = ["clap", "clap_complete", "clap_mangen", "indicatif", "ctrlc"];

/// The names of the packages in this package's normal dependency graph.
fn dependencies(features: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--edges", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .args(features)
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn without_default_features_no_cli_dependency_is_compiled() {
    let library = dependencies(&["--no-default-features"]);
    assert!(library.iter().any(|p| p == "ureq"), "{library:?}");
    for name in CLI_ONLY {
        assert!(!library.iter().any(|p| p == name), "{name} in {library:?}");
    }
}

#[test]
fn the_default_cli_feature_brings_the_tools_dependencies() {
    let with_cli = dependencies(&[]);
    for name in CLI_ONLY {
        assert!(
            with_cli.iter().any(|p| p == name),
            "{name} missing: {with_cli:?}"
        );
    }
}
