//! Generates the C header with cbindgen into OUT_DIR (`make header` copies it
//! to include/) and gives the shared library its SONAME.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtaskfarm_worker.so.{major}");
    }

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let version =
        |part: &str| env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets it");
    config.after_includes = Some(format!(
        "\n/** The version of this header (compare with tf_version() at run time). */\n\
         #define TF_VERSION_MAJOR {}\n#define TF_VERSION_MINOR {}\n#define TF_VERSION_PATCH {}\n",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH")
    ));
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write_to_file(out_dir.join("taskfarm_worker.h"));
}
