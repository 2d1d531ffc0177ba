//! redis-rs (a dev-dependency only) as the oracle of the wire format: our
//! RESP2 reader against `redis::parse_redis_value`, our command packing
//! against `redis::Cmd::get_packed_command`, our key slots against
//! `redis::cluster_routing::Slot::for_key`. Inputs come from a small seeded
//! generator (no extra dependency), so a failure reruns identically; the
//! fuzz target `reply_oracle` explores the reader further.

mod oracle;

use oracle::encode::encode;
use ors_redis::keys::{key_slot, ClusterName, KeyBuilder, SessionId};
use ors_redis::reply::{ServerError, Value};
use ors_redis::resp::{pack_command, Command};
use redis::cluster_routing::Slot;

/// xorshift64*: deterministic, good enough to spread test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max: usize, alphabet: &[u8]) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

const ANY: &[u8] = &{
    let mut all = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        all[i] = i as u8;
        i += 1;
    }
    all
};
/// What a status line may hold: printable ASCII and some UTF-8.
const TEXT: &[u8] = b"abcXYZ 0129:-_.{}\xc3\xa9";

fn text(rng: &mut Rng, max: usize) -> String {
    String::from_utf8_lossy(&rng.bytes(max, TEXT)).into_owned()
}

fn value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth < 4 { 8 } else { 7 }) {
        0 => Value::Nil,
        1 => Value::Int(match rng.below(4) {
            0 => i64::MIN,
            1 => i64::MAX,
            _ => rng.next() as i64 >> rng.below(64),
        }),
        2 | 3 => {
            let max = if rng.below(8) == 0 { 20_000 } else { 40 };
            Value::BulkString(rng.bytes(max, ANY))
        }
        4 => Value::Okay,
        5 => Value::SimpleString(text(rng, 30)),
        6 => Value::ServerError(ServerError::new(format!(
            "{}{}",
            [
                "ERR",
                "MOVED",
                "ASK",
                "NOPERM",
                "CLUSTERDOWN",
                "WRONGTYPE",
                ""
            ][rng.below(7)],
            if rng.below(2) == 0 {
                format!(" {}", text(rng, 30))
            } else {
                String::new()
            }
        ))),
        _ => Value::Array((0..rng.below(5)).map(|_| value(rng, depth + 1)).collect()),
    }
}

/// Well-formed replies, then the same bytes damaged: a byte changed, cut
/// short, a byte inserted. Every reply our reader accepts, redis-rs must
/// read to the same value.
#[test]
fn redis_rs_reads_every_reply_ours_accepts_to_the_same_value() {
    let mut rng = Rng(0x5eed_0fa5_2ed1_5015);
    let (mut accepted, mut damaged_accepted) = (0, 0);
    for case in 0..3000 {
        let mut bytes = Vec::new();
        encode(&value(&mut rng, 0), &mut bytes);
        let step = [1, 3, 8191, usize::MAX][case % 4];
        match oracle::check(&bytes, step) {
            Ok(true) => accepted += 1,
            Ok(false) => panic!("case {case}: our reader refused a well-formed reply {bytes:?}"),
            Err(e) => panic!("case {case}: {e}"),
        }
        let mut damaged = bytes.clone();
        let at = rng.below(damaged.len());
        match rng.below(3) {
            0 => damaged[at] = ANY[rng.below(256)],
            1 => damaged.truncate(at),
            _ => damaged.insert(at, b"\r\n:-$*+0123456789"[rng.below(17)]),
        }
        match oracle::check(&damaged, step) {
            Ok(true) => damaged_accepted += 1,
            Ok(false) => {}
            Err(e) => panic!("case {case} (damaged): {e}"),
        }
    }
    assert_eq!(accepted, 3000);
    // The damage must leave some replies readable, or the second half tests nothing.
    assert!(
        damaged_accepted > 300,
        "{damaged_accepted} damaged replies read"
    );
}

/// Our commands are byte for byte what redis-rs packs for the same arguments.
#[test]
fn commands_pack_as_redis_rs_packs_them() {
    let mut rng = Rng(0x00c0_44a2_d5c0_de15);
    for _ in 0..2000 {
        let name = ["GET", "SET", "UNLINK", "DEL", "SCAN", "CLUSTER", "WAIT"][rng.below(7)];
        let args: Vec<Vec<u8>> = (0..rng.below(6))
            .map(|_| {
                let max = if rng.below(10) == 0 { 5000 } else { 20 };
                rng.bytes(max, ANY)
            })
            .collect();
        let mut ours = Vec::new();
        let mut all: Vec<&[u8]> = vec![name.as_bytes()];
        all.extend(args.iter().map(Vec::as_slice));
        pack_command(&mut ours, &all);
        let mut theirs = redis::cmd(name);
        args.iter().for_each(|a| {
            theirs.arg(a.as_slice());
        });
        assert_eq!(ours, theirs.get_packed_command(), "{name} {args:?}");
    }
}

/// The data path's encoder, `resp::Command`, packs pipelines of commands
/// byte for byte as redis-rs does, whichever way each argument is given:
/// copied, written in place (`arg_with`, as keys are), a number (`arg_u64`),
/// or left out and sent from the caller's buffer (`external_arg`, joined by
/// `parts`). The commands session.rs and scan.rs send are checked in their
/// own unit tests, from the functions that build them.
#[test]
fn the_encoder_packs_pipelines_as_redis_rs_packs_them() {
    let mut rng = Rng(0x0e2c_0de2_1505_0015);
    let mut cmd = Command::default();
    for case in 0..1000 {
        let mut pipe = redis::pipe();
        let mut external: Option<Vec<u8>> = None;
        for n in 0..1 + rng.below(3) {
            let argc = 1 + rng.below(12);
            if n == 0 {
                cmd.start(argc);
            } else {
                cmd.then(argc);
            }
            let theirs = pipe.cmd("SET");
            cmd.arg(b"SET");
            for _ in 1..argc {
                let max = if rng.below(10) == 0 { 70_000 } else { 30 };
                let arg = rng.bytes(max, ANY);
                match rng.below(4) {
                    0 => {
                        let n = rng.next() >> rng.below(64);
                        cmd.arg_u64(n);
                        theirs.arg(n);
                        continue;
                    }
                    1 => {
                        cmd.arg_with(arg.len(), |out| out.extend_from_slice(&arg));
                    }
                    2 if external.is_none() => {
                        cmd.external_arg(arg.len());
                        external = Some(arg.clone());
                    }
                    _ => {
                        cmd.arg(&arg);
                    }
                }
                theirs.arg(arg);
            }
        }
        let ours = match &external {
            Some(value) => cmd.parts(value).concat(),
            None => cmd.bytes().to_vec(),
        };
        assert_eq!(ours, pipe.get_packed_pipeline(), "case {case}");
        cmd.trim();
    }
}

/// Key slots, hash tags included, are redis-rs's; and a session's slot is
/// the slot of its whole key.
#[test]
fn key_slots_are_redis_rs_slots() {
    let mut rng = Rng(0x0005_1075);
    for _ in 0..20_000 {
        let key = rng.bytes(30, b"ab{}{}:x\x00\xff");
        let slot = key_slot(&key);
        assert_eq!(Slot::new(slot), Some(Slot::for_key(&key)), "{key:?}");
    }
    let keys = KeyBuilder::new(&ClusterName::parse("ORS_EU").unwrap());
    for _ in 0..5000 {
        let id = rng.bytes(40, b"0123456789ABCDEF-node:._~ \x7f\x80\xfe");
        let Ok(id) = SessionId::parse(&id) else {
            continue;
        };
        assert_eq!(Slot::new(id.slot()), Some(Slot::for_key(keys.key(id))));
    }
}
