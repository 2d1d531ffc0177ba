//! What a session costs a Redis node, estimated from its key's and value's
//! lengths with the allocator's size classes: the model that `capacity`'s
//! measurement falls back on and that its compression table projects with.

/// jemalloc's size class for `n` bytes: what Redis really allocates.
fn allocation(n: u64) -> u64 {
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return n.div_ceil(16) * 16;
    }
    // Four classes per doubling above 128: 160, 192, 224, 256, 320, ...
    let power = 63 - u64::from((n - 1).leading_zeros());
    let step = 1u64 << (power - 2);
    n.div_ceil(step) * step
}

/// Bytes of an sds string's header and terminating NUL.
fn sds_overhead(len: u64) -> u64 {
    match len {
        0..=255 => 4,
        256..=65_535 => 6,
        65_536..=4_294_967_295 => 10,
        _ => 18,
    }
}

/// What one session of `value_len` bytes under a key of `key_len` bytes
/// costs on a Redis 7 cluster node, estimated: the key, the value object
/// (embedded in one allocation up to 44 bytes), the main table's entry with
/// its cluster metadata, the expires entry, and the tables' buckets. Within
/// a few percent of `used_memory` on Redis 7.0.
pub(super) fn estimate_session_bytes(key_len: u64, value_len: u64) -> u64 {
    let key = allocation(key_len + sds_overhead(key_len));
    let value = if value_len <= 44 {
        allocation(16 + 4 + value_len)
    } else {
        16 + allocation(value_len + sds_overhead(value_len))
    };
    key + value + 48 + 32 + 24
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_size_classes() {
        let cases = [
            (1, 8),
            (9, 16),
            (17, 32),
            (30, 32),
            (33, 48),
            (128, 128),
            (129, 160),
            (256, 256),
            (257, 320),
            (1006, 1024),
            (4006, 4096),
            (20006, 20480),
        ];
        for (n, class) in cases {
            assert_eq!(allocation(n), class, "{n}");
        }
    }
}
