//! The C status codes and their names, exactly as `../shared/API.md` fixes
//! them. cbindgen turns each `pub const` here into a `#define` in the header.

/// Success.
pub const ORS_OK: i32 = 0;
/// get/del: no such session (never stored, deleted, or expired).
pub const ORS_NOT_FOUND: i32 = 1;
/// NULL where a pointer is required, bad session id, `data == NULL` with `len > 0`.
pub const ORS_ERR_INVALID_ARGUMENT: i32 = -1;
/// init: config string malformed, unknown or duplicate key, bad value; the
/// target is not a Redis Cluster.
pub const ORS_ERR_CONFIG: i32 = -2;
/// Called before `ors_redis_init` or after `ors_redis_shutdown`.
pub const ORS_ERR_NOT_INITIALIZED: i32 = -3;
/// `ors_redis_init` while initialized.
pub const ORS_ERR_ALREADY_INITIALIZED: i32 = -4;
/// No node reachable / connection lost and retries exhausted.
pub const ORS_ERR_CONNECTION: i32 = -5;
/// The operation's deadline (`op-timeout`) passed.
pub const ORS_ERR_TIMEOUT: i32 = -6;
/// Authentication or ACL refused (NOAUTH, WRONGPASS, NOPERM).
pub const ORS_ERR_AUTH: i32 = -7;
/// TLS handshake or certificate verification failed.
pub const ORS_ERR_TLS: i32 = -8;
/// Cluster down or slot not served, after retries.
pub const ORS_ERR_CLUSTER: i32 = -9;
/// Value longer than `max-value-bytes`.
pub const ORS_ERR_TOO_LARGE: i32 = -10;
/// `wait-replicas > 0`: the master applied the write but fewer replicas
/// acknowledged it within `wait-timeout`.
pub const ORS_ERR_NOT_DURABLE: i32 = -11;
/// Any other error reply from Redis.
pub const ORS_ERR_SERVER: i32 = -12;
/// The node serving the session's slot failed recently and is being probed
/// (`node-fail-fast=true`): the call returned at once, unsent.
/// `ors_last_error()` names the node and since when.
pub const ORS_ERR_UNAVAILABLE: i32 = -13;
/// A bug inside the library (a caught panic); the library stays usable.
pub const ORS_ERR_INTERNAL: i32 = -99;

/// The constant's name for a status, with a trailing NUL for C.
pub(crate) fn status_name(status: i32) -> &'static str {
    match status {
        ORS_OK => "ORS_OK\0",
        ORS_NOT_FOUND => "ORS_NOT_FOUND\0",
        ORS_ERR_INVALID_ARGUMENT => "ORS_ERR_INVALID_ARGUMENT\0",
        ORS_ERR_CONFIG => "ORS_ERR_CONFIG\0",
        ORS_ERR_NOT_INITIALIZED => "ORS_ERR_NOT_INITIALIZED\0",
        ORS_ERR_ALREADY_INITIALIZED => "ORS_ERR_ALREADY_INITIALIZED\0",
        ORS_ERR_CONNECTION => "ORS_ERR_CONNECTION\0",
        ORS_ERR_TIMEOUT => "ORS_ERR_TIMEOUT\0",
        ORS_ERR_AUTH => "ORS_ERR_AUTH\0",
        ORS_ERR_TLS => "ORS_ERR_TLS\0",
        ORS_ERR_CLUSTER => "ORS_ERR_CLUSTER\0",
        ORS_ERR_TOO_LARGE => "ORS_ERR_TOO_LARGE\0",
        ORS_ERR_NOT_DURABLE => "ORS_ERR_NOT_DURABLE\0",
        ORS_ERR_SERVER => "ORS_ERR_SERVER\0",
        ORS_ERR_UNAVAILABLE => "ORS_ERR_UNAVAILABLE\0",
        ORS_ERR_INTERNAL => "ORS_ERR_INTERNAL\0",
        _ => "ORS_UNKNOWN_STATUS\0",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_constants() {
        for (code, name) in [
            (ORS_OK, "ORS_OK"),
            (ORS_NOT_FOUND, "ORS_NOT_FOUND"),
            (ORS_ERR_INVALID_ARGUMENT, "ORS_ERR_INVALID_ARGUMENT"),
            (ORS_ERR_CONFIG, "ORS_ERR_CONFIG"),
            (ORS_ERR_NOT_INITIALIZED, "ORS_ERR_NOT_INITIALIZED"),
            (ORS_ERR_ALREADY_INITIALIZED, "ORS_ERR_ALREADY_INITIALIZED"),
            (ORS_ERR_CONNECTION, "ORS_ERR_CONNECTION"),
            (ORS_ERR_TIMEOUT, "ORS_ERR_TIMEOUT"),
            (ORS_ERR_AUTH, "ORS_ERR_AUTH"),
            (ORS_ERR_TLS, "ORS_ERR_TLS"),
            (ORS_ERR_CLUSTER, "ORS_ERR_CLUSTER"),
            (ORS_ERR_TOO_LARGE, "ORS_ERR_TOO_LARGE"),
            (ORS_ERR_NOT_DURABLE, "ORS_ERR_NOT_DURABLE"),
            (ORS_ERR_SERVER, "ORS_ERR_SERVER"),
            (ORS_ERR_UNAVAILABLE, "ORS_ERR_UNAVAILABLE"),
            (ORS_ERR_INTERNAL, "ORS_ERR_INTERNAL"),
            (2, "ORS_UNKNOWN_STATUS"),
            (-100, "ORS_UNKNOWN_STATUS"),
        ] {
            assert_eq!(status_name(code), format!("{name}\0"));
        }
    }
}
