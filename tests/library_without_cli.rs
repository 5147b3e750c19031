//! The library alone: building it (`make build`, `cargo build --lib`) or a
//! Rust project that depends on `taskfarm_worker` (with or without
//! `default-features = false`) compiles none of the command-line tool's
//! dependencies and no cbindgen (a dev-dependency, for the header check), and
//! makes no C library (the crate is an rlib; `make build` asks for the `.so`
//! and `.a`). Checked on the dependency graph that cargo resolves for this
//! package, with and without the `cli` feature (so the check would see them
//! if the feature stopped gating them), and on the crate's targets.

use std::process::Command;

/// What only the command-line tool `taskfarm` needs.
const CLI_ONLY: [&str; 5] = ["clap", "clap_complete", "clap_mangen", "indicatif", "ctrlc"];

/// The names of the packages in this package's dependency graph of normal
/// and build dependencies (what a build of the library compiles).
fn dependencies(features: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
        ])
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
fn the_library_compiles_no_cli_dependency_and_no_cbindgen() {
    for features in [&[][..], &["--no-default-features"][..]] {
        let library = dependencies(features);
        assert!(library.iter().any(|p| p == "ureq"), "{library:?}");
        for name in CLI_ONLY.iter().chain(&["cbindgen"]) {
            assert!(
                !library.iter().any(|p| p == name),
                "{name} in {library:?} ({features:?})"
            );
        }
    }
}

#[test]
fn the_crate_is_an_rlib_without_a_build_script() {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--offline",
            "--no-deps",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{output:?}");
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let targets = metadata["packages"][0]["targets"].as_array().unwrap();
    let kinds = |kind: &str| -> Vec<&serde_json::Value> {
        targets
            .iter()
            .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == kind))
            .collect()
    };
    let lib = kinds("lib");
    assert_eq!(lib.len(), 1, "{targets:?}");
    assert_eq!(lib[0]["crate_types"], serde_json::json!(["lib"]), "{lib:?}");
    assert!(kinds("cdylib").is_empty() && kinds("staticlib").is_empty());
    assert!(
        kinds("custom-build").is_empty(),
        "a build script: {targets:?}"
    );
}

#[test]
fn the_cli_feature_brings_the_tools_dependencies() {
    let with_cli = dependencies(&["--features", "cli"]);
    for name in CLI_ONLY {
        assert!(
            with_cli.iter().any(|p| p == name),
            "{name} missing: {with_cli:?}"
        );
    }
}
