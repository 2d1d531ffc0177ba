//! Generates `include/ors_redis.h` with cbindgen and gives the shared
//! library its SONAME.
//!
//! The header is generated into OUT_DIR and copied into `include/` only when
//! it differs, so an unchanged header keeps its timestamp. Under CI (`CI` set)
//! the committed header is never rewritten: a stale one is left for the
//! `header_is_current` test to catch. A source tree that
//! cannot be written (read-only, vendored, a package cache) never fails the
//! build: the header is left as it is, with a cargo warning.
//!
//! For a Windows target, ors_redis.dll gets a version resource instead of a
//! SONAME (compiled with mingw's windres; `WINDRES` names another one).

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

    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        windows_version_resource(&out_dir, &major, &minor, &patch);
    } else {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libors_redis.so.{major}");
    }
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=include/ors_redis.h");
    println!("cargo:rerun-if-env-changed=CI");

    let committed = crate_dir.join("include").join("ors_redis.h");
    let generated = out_dir.join("ors_redis.h");
    match generate_header(&crate_dir, &generated, &major, &minor, &patch) {
        Ok(new) => update_committed_header(&committed, &generated, &new),
        // Under CI a header that cannot be generated is a failure; anywhere
        // else the library still builds, with the committed header (the
        // `header_is_current` test then fails to build, saying why).
        Err(e) if env::var_os("CI").is_some() => panic!("cannot generate the header: {e}"),
        Err(e) => println!(
            "cargo:warning=cannot generate include/ors_redis.h ({e}); the committed header is used as it is"
        ),
    }
}

/// Generates the header into `generated` and returns it. cbindgen reads the
/// sources from `src/lib.rs` down rather than through `cargo metadata`,
/// which would need every dev-dependency (and the network) in a vendored
/// or offline tree (cbindgen issues #630, #691).
fn generate_header(
    crate_dir: &Path,
    generated: &Path,
    major: &str,
    minor: &str,
    patch: &str,
) -> Result<Vec<u8>, String> {
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .map_err(|e| format!("cbindgen.toml: {e}"))?;
    // Version macros come from Cargo.toml, so they cannot drift from
    // ors_redis_version() (a C test compares them too).
    config.after_includes = Some(format!(
        "\n#define ORS_REDIS_VERSION_MAJOR {major}\n#define ORS_REDIS_VERSION_MINOR {minor}\n#define ORS_REDIS_VERSION_PATCH {patch}\n"
    ));
    cbindgen::Builder::new()
        .with_src(crate_dir.join("src").join("lib.rs"))
        .with_config(config)
        .generate()
        .map_err(|e| e.to_string())?
        .write_to_file(generated);
    fs::read(generated).map_err(|e| format!("{}: {e}", generated.display()))
}

/// Copies a header that differs into `include/`, except under CI, where a
/// stale committed header is left for the `header_is_current` test to fail
/// on; a tree that cannot be written gets a warning, never a failed build.
fn update_committed_header(committed: &Path, generated: &Path, new: &[u8]) {
    if fs::read(committed).ok().as_deref() == Some(new) {
        return;
    }
    if env::var_os("CI").is_some() {
        println!("cargo:warning=include/ors_redis.h is stale: build locally and commit the regenerated header");
    } else if let Err(e) = replace(committed, new) {
        println!(
            "cargo:warning=include/ors_redis.h is stale and could not be rewritten ({e}); the current header is {}",
            generated.display()
        );
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

/// Compiles the DLL's VERSIONINFO (what Explorer's Details tab and ORS's
/// support tools show) from Cargo.toml's version and links it into the cdylib.
fn windows_version_resource(out_dir: &Path, major: &str, minor: &str, patch: &str) {
    let version = format!("{major}.{minor}.{patch}");
    let description = env::var("CARGO_PKG_DESCRIPTION").unwrap_or_default();
    let rc = format!(
        r#"#include <winver.h>
VS_VERSION_INFO VERSIONINFO
FILEVERSION {major},{minor},{patch},0
PRODUCTVERSION {major},{minor},{patch},0
FILEOS VOS_NT_WINDOWS32
FILETYPE VFT_DLL
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904B0"
    BEGIN
      VALUE "CompanyName", "ors-redis"
      VALUE "FileDescription", "{description}"
      VALUE "FileVersion", "{version}"
      VALUE "InternalName", "ors_redis"
      VALUE "LegalCopyright", "MIT License"
      VALUE "OriginalFilename", "ors_redis.dll"
      VALUE "ProductName", "ors-redis"
      VALUE "ProductVersion", "{version}"
    END
  END
  BLOCK "VarFileInfo"
  BEGIN
    VALUE "Translation", 0x409, 1200
  END
END
"#
    );
    let rc_path = out_dir.join("ors_redis_version.rc");
    let obj_path = out_dir.join("ors_redis_version.o");
    fs::write(&rc_path, rc).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-env-changed=WINDRES");
    let windres = env::var("WINDRES").unwrap_or_else(|_| "x86_64-w64-mingw32-windres".into());
    let status = std::process::Command::new(&windres)
        .arg("--input-format=rc")
        .arg("--output-format=coff")
        .arg("-i")
        .arg(&rc_path)
        .arg("-o")
        .arg(&obj_path)
        .status()
        .unwrap_or_else(|e| {
            panic!("{windres} (mingw-w64's binutils) is needed for a Windows build: {e}")
        });
    assert!(
        status.success(),
        "{windres} failed on {}",
        rc_path.display()
    );
    println!("cargo:rustc-cdylib-link-arg={}", obj_path.display());
}
