//! Session ids, cluster names, and the Redis keys built from them.
//!
//! A session lives under `ORS:<cluster-name>:{<session_id>}`. The hash tag
//! makes the slot depend on the session id alone, so sessions spread over
//! every master. Validation happens here, once; the rest of the crate takes
//! the validated types.

/// Number of hash slots in a Redis Cluster.
pub(crate) const SLOT_COUNT: usize = 16384;

const MAX_SESSION_ID_BYTES: usize = 1024;
const MAX_CLUSTER_NAME_CHARS: usize = 128;

/// A session id that is safe to put inside a hash tag: 1 to 1024 bytes, no
/// ASCII control characters, no `{` or `}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionId<'a>(&'a [u8]);

/// Bytes a session id may not hold: ASCII control characters and braces.
/// A table, because every call checks every byte of its id.
static FORBIDDEN_IN_SESSION_ID: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_control() || b == b'{' as usize || b == b'}' as usize;
        b += 1;
    }
    table
};

/// Where the first byte forbidden in a session id is. Eight bytes at a
/// time (every call validates its id: about half the instructions of a
/// byte-by-byte scan, bench/callgrind.sh), then the rest one by one.
#[inline]
fn first_forbidden(bytes: &[u8]) -> Option<usize> {
    let mut clean = 0;
    for chunk in bytes.chunks_exact(8) {
        match <[u8; 8]>::try_from(chunk) {
            Ok(word) if !word_has_forbidden(u64::from_le_bytes(word)) => clean += 8,
            _ => break,
        }
    }
    bytes[clean..]
        .iter()
        .position(|&b| FORBIDDEN_IN_SESSION_ID[b as usize])
        .map(|p| clean + p)
}

/// Whether one of the 8 bytes of `x` is forbidden (below 0x20, 0x7F, `{`
/// or `}`), exactly: `(x - n*ONES) & !x & HIGH` is non-zero if and only if a
/// byte of `x` is below `n` (for n <= 0x80), and with n = 1 on `x ^ v*ONES`,
/// if and only if a byte equals `v`.
#[inline(always)]
fn word_has_forbidden(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |y: u64, n: u64| y.wrapping_sub(ONES * n) & !y & HIGH;
    let equal = |v: u8| below(x ^ (ONES * v as u64), 1);
    (below(x, 0x20) | equal(0x7F) | equal(b'{') | equal(b'}')) != 0
}

impl<'a> SessionId<'a> {
    /// Checks an id from the caller; the error says what is wrong, and where.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Err("session id is empty (1 to 1024 bytes expected)".into());
        }
        if bytes.len() > MAX_SESSION_ID_BYTES {
            return Err(format!(
                "session id is {} bytes long (at most {MAX_SESSION_ID_BYTES})",
                bytes.len()
            ));
        }
        if let Some(pos) = first_forbidden(bytes) {
            let what = match bytes[pos] {
                b'{' | b'}' => "a brace, which would change the key's hash tag",
                _ => "an ASCII control character",
            };
            return Err(format!(
                "session id has {what} at byte {pos} (0x{:02x})",
                bytes[pos]
            ));
        }
        Ok(SessionId(bytes))
    }

    /// The id as the caller gave it.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The slot of the session's key: the CRC16 of its hash tag, which is
    /// the session id itself.
    pub fn slot(&self) -> u16 {
        crc16(self.0) % SLOT_COUNT as u16
    }
}

/// An ORS cluster name: 1 to 128 characters of `A-Z a-z 0-9 _ . -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterName(String);

impl ClusterName {
    /// Checks a configured `cluster-name`; the error says what breaks the rule.
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.is_empty() || name.len() > MAX_CLUSTER_NAME_CHARS {
            return Err(format!(
                "cluster-name must be 1 to {MAX_CLUSTER_NAME_CHARS} characters, got {}",
                name.len()
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(format!(
                "cluster-name may only hold A-Z a-z 0-9 _ . - (found {c:?})"
            ));
        }
        Ok(ClusterName(name.to_string()))
    }

    /// The name as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key layout, `ORS:<cluster-name>:{<session_id>}`, in its one home:
/// session keys, the session id inside a key, and the `SCAN ... MATCH`
/// patterns of a cluster name's keys. The prefix `ORS:<cluster-name>:{` is
/// computed once.
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    /// `ORS:<cluster-name>:{`: ASCII, as cluster names are.
    prefix: String,
}

impl KeyBuilder {
    /// The keys of `cluster`'s sessions.
    pub fn new(cluster: &ClusterName) -> Self {
        KeyBuilder {
            prefix: format!("ORS:{}:{{", cluster.as_str()),
        }
    }

    /// Writes the key of `id` into `out` (cleared first), so that a thread can
    /// reuse one buffer for every call.
    pub fn write_key(&self, id: SessionId<'_>, out: &mut Vec<u8>) {
        out.clear();
        self.push_key(id, out);
    }

    /// Appends the key of `id` to `out` (`key_len` bytes).
    pub fn push_key(&self, id: SessionId<'_>, out: &mut Vec<u8>) {
        out.reserve(self.key_len(id.0.len()));
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(id.0);
        out.push(b'}');
    }

    /// The key of `id`, in a new buffer.
    pub fn key(&self, id: SessionId<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_key(id, &mut out);
        out
    }

    /// The length of the key of an id of `id_len` bytes.
    pub fn key_len(&self, id_len: usize) -> usize {
        self.prefix.len() + id_len + 1
    }

    /// The session id inside `key`, or `None` for a key that is not a
    /// session key of this cluster name.
    pub fn session_id<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        key.strip_prefix(self.prefix.as_bytes())
            .and_then(|rest| rest.strip_suffix(b"}"))
            .filter(|id| SessionId::parse(id).is_ok())
    }

    /// The `SCAN ... MATCH` pattern of the sessions whose id starts with
    /// `id_prefix`, taken literally (glob characters escaped).
    pub fn session_pattern(&self, id_prefix: &[u8]) -> Result<Vec<u8>, String> {
        if let Some(b) = id_prefix
            .iter()
            .find(|&&b| FORBIDDEN_IN_SESSION_ID[b as usize])
        {
            return Err(format!(
                "id_prefix holds 0x{b:02x}, which no session id can contain"
            ));
        }
        let mut pattern = self.prefix.clone().into_bytes();
        for &b in id_prefix {
            // Redis glob specials; `{` and `}` are literal in MATCH.
            if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
                pattern.push(b'\\');
            }
            pattern.push(b);
        }
        pattern.push(b'*');
        Ok(pattern)
    }

    /// `ORS:<cluster-name>:`, the start of every key of the cluster name,
    /// sessions or not (what a purge deletes, as messages name it).
    pub fn cluster_prefix(&self) -> &str {
        // The session prefix without its `{` (one byte: ASCII).
        &self.prefix[..self.prefix.len() - 1]
    }

    /// A key of `slot` that no session can have (its hash tag starts with a
    /// control character, which session ids may not hold): a bulk read asks
    /// the node it lists the slot on for it, to learn whether that node
    /// serves the slot (no MOVED) and is not migrating it (no ASK: a
    /// migrating node redirects a key it does not hold).
    pub fn slot_probe_key(&self, slot: u16) -> Vec<u8> {
        let tag = &probe_tags()[slot as usize % SLOT_COUNT];
        let mut key = Vec::with_capacity(self.prefix.len() + tag.len() + 1);
        key.extend_from_slice(self.prefix.as_bytes());
        key.extend_from_slice(tag);
        key.push(b'}');
        key
    }

    /// The key of the compression dictionary `id`:
    /// `ORS:<cluster-name>:dict:<8 hex digits>` (no hash tag, and so never
    /// a session's key).
    pub fn dictionary_key(&self, id: u32) -> Vec<u8> {
        format!(
            "{}dict:{}",
            self.cluster_prefix(),
            crate::dictionary::format_id(id)
        )
        .into_bytes()
    }

    /// The `SCAN ... MATCH` pattern of every key of the cluster name,
    /// sessions or not (cluster names hold no glob characters).
    pub fn cluster_pattern(&self) -> Vec<u8> {
        format!("{}*", self.cluster_prefix()).into_bytes()
    }
}

/// The slot of any key, hash tags included, as the Redis Cluster spec
/// defines it: if the key has a `{` followed later by a `}` with at least one
/// byte between them, only those bytes are hashed.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) % SLOT_COUNT as u16
}

/// For each slot, a hash tag of that slot: `\x01` and a decimal number,
/// the smallest that hashes to the slot. Found once per process (about
/// 170,000 CRC16s of a few bytes).
fn probe_tags() -> &'static [Box<[u8]>] {
    static TAGS: once_cell::sync::OnceCell<Vec<Box<[u8]>>> = once_cell::sync::OnceCell::new();
    TAGS.get_or_init(|| {
        let mut tags: Vec<Option<Box<[u8]>>> = vec![None; SLOT_COUNT];
        let mut missing = SLOT_COUNT;
        let mut tag = Vec::new();
        let mut n: u64 = 0;
        while missing > 0 {
            tag.clear();
            tag.push(0x01);
            tag.extend_from_slice(n.to_string().as_bytes());
            let slot = (crc16(&tag) as usize) % SLOT_COUNT;
            if tags[slot].is_none() {
                tags[slot] = Some(tag.clone().into_boxed_slice());
                missing -= 1;
            }
            n += 1;
        }
        tags.into_iter().flatten().collect()
    })
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as in the
/// Redis Cluster specification.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[(((crc >> 8) as u8) ^ b) as usize]
    })
}

const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_has_a_probe_key_no_session_can_have() {
        let keys = KeyBuilder::new(&ClusterName::parse("EU").unwrap());
        for slot in 0..SLOT_COUNT as u16 {
            let key = keys.slot_probe_key(slot);
            assert_eq!(key_slot(&key), slot);
            assert!(key.starts_with(b"ORS:EU:{\x01"), "{key:?}");
            assert_eq!(keys.session_id(&key), None, "{key:?}");
        }
    }

    #[test]
    fn crc16_matches_the_cluster_spec_vector() {
        // "The CRC16 ... of '123456789' is 0x31C3" (Redis Cluster spec, appendix A).
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn key_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on a real server.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"hello"), 866);
        assert_eq!(key_slot(b"123456789"), 0x31C3);
    }

    #[test]
    fn hash_tags_follow_the_spec() {
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // Only the first {...} counts.
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        // Empty tag: the whole key is hashed.
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        // The tag is everything up to the first } after the first {.
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        // No closing brace: the whole key.
        assert_eq!(key_slot(b"foo{bar"), crc16(b"foo{bar") % 16384);
    }

    #[test]
    fn session_keys_hash_by_session_id() {
        let cluster = ClusterName::parse("ORS_EU").unwrap();
        let keys = KeyBuilder::new(&cluster);
        let id = SessionId::parse(b"00AB12CD-node7").unwrap();
        let key = keys.key(id);
        assert_eq!(key, b"ORS:ORS_EU:{00AB12CD-node7}");
        assert_eq!(key_slot(&key), id.slot());
        assert_eq!(id.slot(), key_slot(b"00AB12CD-node7"));

        // The reused buffer is cleared first.
        let mut buf = b"garbage".to_vec();
        keys.write_key(SessionId::parse(b"x").unwrap(), &mut buf);
        assert_eq!(buf, b"ORS:ORS_EU:{x}");
    }

    #[test]
    fn session_ids_come_back_out_of_keys() {
        let keys = KeyBuilder::new(&ClusterName::parse("EU").unwrap());
        let id = SessionId::parse(b"s-1").unwrap();
        assert_eq!(keys.session_id(&keys.key(id)), Some(&b"s-1"[..]));
        assert_eq!(keys.key_len(3), keys.key(id).len());
        assert_eq!(keys.session_id(b"ORS:EU:{}"), None);
        assert_eq!(keys.session_id(b"ORS:EU:{a}b}"), None);
        assert_eq!(keys.session_id(b"ORS:EU:meta"), None);
        assert_eq!(keys.session_id(b"ORS:EUX:{s}"), None);
    }

    #[test]
    fn patterns_match_the_layout_and_the_prefix_literally() {
        let keys = KeyBuilder::new(&ClusterName::parse("EU").unwrap());
        assert_eq!(
            keys.session_pattern(br"a*b?c[d]e\f").unwrap(),
            br"ORS:EU:{a\*b\?c\[d\]e\\f*".to_vec()
        );
        assert_eq!(keys.session_pattern(b"").unwrap(), b"ORS:EU:{*".to_vec());
        assert!(keys.session_pattern(b"a{").is_err());
        assert!(keys.session_pattern(b"a\n").is_err());
        assert_eq!(keys.cluster_pattern(), b"ORS:EU:*".to_vec());
        assert_eq!(keys.cluster_prefix(), "ORS:EU:");
        let id = SessionId::parse(b"s").unwrap();
        assert!(keys.key(id).starts_with(keys.cluster_prefix().as_bytes()));
    }

    #[test]
    fn session_id_rules() {
        assert!(SessionId::parse(b"a").is_ok());
        assert!(SessionId::parse(&[b'a'; 1024]).is_ok());
        assert!(SessionId::parse("sess-é-ü".as_bytes()).is_ok());
        assert!(SessionId::parse(b"with space and :colon").is_ok());
        assert!(SessionId::parse(b"").unwrap_err().contains("empty"));
        assert!(SessionId::parse(&[b'a'; 1025])
            .unwrap_err()
            .contains("1025 bytes"));
        assert!(SessionId::parse(b"a{b").unwrap_err().contains("brace"));
        assert!(SessionId::parse(b"a}b").unwrap_err().contains("brace"));
        assert!(SessionId::parse(b"a\nb").unwrap_err().contains("control"));
        assert!(SessionId::parse(b"a\x7fb").unwrap_err().contains("control"));
        assert!(SessionId::parse(b"\x01").unwrap_err().contains("byte 0"));
    }

    #[test]
    fn cluster_name_rules() {
        assert!(ClusterName::parse("ORS_EU-1.prod").is_ok());
        assert!(ClusterName::parse(&"a".repeat(128)).is_ok());
        assert!(ClusterName::parse("").is_err());
        assert!(ClusterName::parse(&"a".repeat(129)).is_err());
        for bad in ["a b", "a:b", "a{b", "a*b", "é"] {
            assert!(ClusterName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn eight_bytes_at_a_time_finds_what_the_table_finds() {
        let table = |bytes: &[u8]| {
            bytes
                .iter()
                .position(|&b| FORBIDDEN_IN_SESSION_ID[b as usize])
        };
        // Every byte value at every position of ids of several lengths,
        // among allowed bytes of every kind (ASCII, 0x7E, UTF-8 high bytes).
        for len in [1usize, 7, 8, 9, 16, 17, 40] {
            for fill in [b'a', b'~', b'|', 0x80, 0xFF, b' '] {
                for pos in 0..len {
                    for b in 0..=255u8 {
                        let mut id = vec![fill; len];
                        id[pos] = b;
                        assert_eq!(
                            first_forbidden(&id),
                            table(&id),
                            "len {len} fill {fill:#x} byte {b:#x} at {pos}"
                        );
                    }
                }
            }
        }
        // Two forbidden bytes: the first is reported.
        let mut id = vec![b'x'; 24];
        id[19] = b'}';
        id[5] = 0x01;
        assert_eq!(first_forbidden(&id), Some(5));
        assert_eq!(first_forbidden(b""), None);
    }
}
