//! The committed header must be exactly what cbindgen generates now.

#[test]
fn header_is_current() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/ors_redis.h"));
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/ors_redis.h"))
            .expect("include/ors_redis.h exists");
    assert!(
        generated == committed,
        "include/ors_redis.h is stale: run `cargo build` and commit the header"
    );
}
