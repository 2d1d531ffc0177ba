//! Generates `include/ors_redis.h` with cbindgen and gives the shared
//! library its SONAME.
//!
//! The header is generated into OUT_DIR and copied into `include/` only when
//! it differs, so an unchanged header keeps its timestamp. Under CI (`CI` set)
//! the committed header is never rewritten: a stale one is left for the
//! `header_is_current` test (and `.ci/run`) to catch. A source tree that
//! cannot be written (read-only, vendored, a package cache) never fails the
//! build: the header is left as it is, with a cargo warning.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let crate_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets the version");
    let patch = env::var("CARGO_PKG_VERSION_PATCH").expect("cargo sets the version");

    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libors_redis.so.{major}");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=include/ors_redis.h");
    println!("cargo:rerun-if-env-changed=CI");

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    // Version macros come from Cargo.toml, so they cannot drift from
    // ors_redis_version() (a C test compares them too).
    config.after_includes = Some(format!(
        "\n#define ORS_REDIS_VERSION_MAJOR {major}\n#define ORS_REDIS_VERSION_MINOR {minor}\n#define ORS_REDIS_VERSION_PATCH {patch}\n"
    ));
    let generated = out_dir.join("ors_redis.h");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write_to_file(&generated);

    let committed = crate_dir.join("include").join("ors_redis.h");
    let new = fs::read(&generated).expect("the generated header is readable");
    if fs::read(&committed).ok().as_deref() != Some(new.as_slice()) {
        if env::var_os("CI").is_some() {
            println!("cargo:warning=include/ors_redis.h is stale: build locally and commit the regenerated header");
        } else if let Err(e) = replace(&committed, &new) {
            println!(
                "cargo:warning=include/ors_redis.h is stale and could not be rewritten ({e}); the current header is {}",
                generated.display()
            );
        }
    }
}

/// Writes `path` through a temporary file in the same folder and a rename, so
/// that two builds at once (debug and release) never leave a torn header.
fn replace(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".ors_redis.h.{}.tmp", std::process::id()));
    fs::write(&tmp, content)
        .and_then(|()| fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
}
