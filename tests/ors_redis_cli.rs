//! The `ors-redis` operator command, run as a program against real local
//! clusters that this test starts and stops itself:
//!
//! - a good one: `c_tests/cluster.sh` on 127.0.0.1:7060-7065 (3 masters + 3
//!   replicas, AOF on, a password), with sessions written through the C API;
//! - a weak one: three plain `redis-server` processes on 127.0.0.1:7070-7072,
//!   joined by `redis-cli --cluster create --cluster-replicas 0`, with AOF off
//!   and `maxmemory-policy allkeys-lru`, which `doctor` must flag.
//!
//! One test function drives every scenario, so nothing runs in parallel with
//! it; both clusters are stopped by pid from `Drop` guards, also when an
//! assertion fails. It needs `redis-server` and `redis-cli`
//! (`c_tests/ensure-deps.sh` installs them; CI always has them).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ors-redis");
const REPO: &str = env!("CARGO_MANIFEST_DIR");
const TMP: &str = env!("CARGO_TARGET_TMPDIR");

const GOOD_PORT: u16 = 7060;
const WEAK_PORT: u16 = 7070;
const WEAK_NODES: u16 = 3;
const PASSWORD: &str = "cli-test-s3cret";
const CLUSTER_NAME: &str = "CLI_TEST";

#[test]
fn operator_command_against_real_clusters() {
    if !have("redis-server") || !have("redis-cli") {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server and redis-cli are needed (c_tests/ensure-deps.sh installs them)"
        );
        eprintln!("skipped: redis-server or redis-cli not installed");
        return;
    }
    let started = Instant::now();
    without_a_cluster();
    {
        let weak = WeakCluster::start();
        weak_cluster(&weak);
    }
    {
        let good = GoodCluster::start();
        good_cluster(&good);
    }
    eprintln!(
        "ors_redis_cli: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------- scenarios

fn without_a_cluster() {
    let top = ors(&["--help"], None);
    assert_eq!(top.code, 0);
    assert!(top.stdout.contains("Usage: ors-redis [options] <command>"));
    for (args, usage) in [
        (&["doctor", "--help"][..], "Usage: ors-redis doctor"),
        (&["capacity", "-h"][..], "Usage: ors-redis capacity"),
        (
            &["sessions", "--help"][..],
            "Usage: ors-redis sessions <subcommand>",
        ),
        (
            &["sessions", "list", "--help"][..],
            "Usage: ors-redis sessions list",
        ),
        (
            &["sessions", "count", "--help"][..],
            "Usage: ors-redis sessions count",
        ),
        (
            &["sessions", "get", "--help"][..],
            "Usage: ors-redis sessions get ID",
        ),
        (
            &["sessions", "del", "--help"][..],
            "Usage: ors-redis sessions del ID",
        ),
        (
            &["help", "sessions", "purge"][..],
            "Usage: ors-redis sessions purge --yes",
        ),
    ] {
        let out = ors(args, None);
        assert_eq!(out.code, 0, "{args:?}");
        assert!(out.stdout.starts_with(usage), "{args:?}: {}", out.stdout);
    }
    let version = ors(&["--version"], None);
    assert_eq!(
        version.stdout.trim(),
        format!("ors-redis {}", env!("CARGO_PKG_VERSION"))
    );

    // Usage and config errors: status 2, a message that names the problem.
    for (args, config, message) in [
        (&[][..], None, "Usage: ors-redis"),
        (&["doctor"][..], None, "no config"),
        (&["frobnicate"][..], None, "unknown command 'frobnicate'"),
        (&["sessions"][..], None, "needs a subcommand"),
        (
            &["sessions", "grab"][..],
            None,
            "unknown sessions subcommand 'grab'",
        ),
        (&["sessions", "get"][..], None, "needs a session id"),
        (&["doctor", "--yes"][..], None, "doctor does not take --yes"),
        (
            &["sessions", "get", "x", "--raw", "--escaped"][..],
            None,
            "exclude each other",
        ),
        (&["doctor", "--bogus"][..], None, "unknown option --bogus"),
        (
            &["capacity", "--sessions", "many"][..],
            None,
            "--sessions 'many'",
        ),
        (
            &["doctor"][..],
            Some("redis-nodes=127.0.0.1:7060"),
            "missing required key 'cluster-name'",
        ),
        (
            &["doctor", "--config-file", "/nonexistent/ors.cfg"][..],
            None,
            "cannot read --config-file",
        ),
        (
            &["sessions", "get", "a{b"][..],
            Some("redis-nodes=127.0.0.1:7060 cluster-name=T"),
            "brace",
        ),
    ] {
        let out = ors(args, config);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(message),
            "{args:?}: want {message:?} in {:?}",
            out.stderr
        );
    }

    // Nothing listens: doctor reports that as its failed check, status 1.
    let config = "redis-nodes=127.0.0.1:7069 cluster-name=T redis-connect-timeout=300";
    let out = ors(&["doctor"], Some(config));
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("connect") && out.stdout.contains("FAIL"));
    let out = ors(&["sessions", "count"], Some(config));
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("127.0.0.1:7069"), "{}", out.stderr);
}

fn weak_cluster(weak: &WeakCluster) {
    let config = weak.config();

    let out = ors(&["doctor"], Some(&config));
    assert_eq!(
        out.code, 1,
        "doctor must fail a weak cluster:\n{}",
        out.stdout
    );
    let rows = |check: &str| -> Vec<String> {
        out.stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{check} ")))
            .map(str::to_string)
            .collect()
    };
    let replicas = rows("replicas");
    assert_eq!(replicas.len(), 3, "{}", out.stdout);
    assert!(replicas
        .iter()
        .all(|r| r.contains("FAIL") && r.contains("no working replica")));
    assert!(rows("aof")[0].contains("FAIL") && rows("aof")[0].contains("appendonly no"));
    let eviction = &rows("maxmemory-policy")[0];
    assert!(eviction.contains("FAIL") && eviction.contains("allkeys-lru on all 3 nodes"));
    assert!(rows("cluster state")[0].contains("PASS"));
    assert!(rows("masters")[0].contains("PASS"));
    assert!(rows("auth")[0].contains("WARN"));
    assert_eq!(rows("latency").len(), 3);
    assert!(out.stdout.contains("result: FAIL"));

    let json = ors(&["doctor", "--json"], Some(&config));
    assert_eq!(json.code, 1);
    let doc = parse_json(&json.stdout);
    assert_eq!(doc.get("result").str(), "fail");
    assert_eq!(doc.get("ok"), &J::Bool(false));
    let failed: Vec<&str> = doc
        .get("checks")
        .arr()
        .iter()
        .filter(|c| c.get("status").str() == "fail")
        .map(|c| c.get("check").str())
        .collect();
    assert_eq!(
        failed,
        [
            "replicas",
            "replicas",
            "replicas",
            "aof",
            "maxmemory-policy"
        ]
    );
    assert_eq!(doc.get("nodes").arr().len(), 3);
    assert_eq!(doc.get("nodes").arr()[0].get("aof"), &J::Bool(false));

    // 64 MiB per master cannot hold a million 4 KiB sessions.
    let out = ors(
        &[
            "capacity",
            "--sessions",
            "1000000",
            "--avg-bytes",
            "4K",
            "--json",
        ],
        Some(&config),
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    let cap = parse_json(&out.stdout);
    assert_eq!(cap.get("measured").get("sessions").num(), 0.0);
    assert_eq!(
        cap.get("projection").get("source").str(),
        "--avg-bytes, estimated"
    );
    for m in cap.get("projection").get("masters").arr() {
        assert_eq!(m.get("limit").str(), "maxmemory");
        assert_eq!(m.get("limit_bytes").num(), 64.0 * 1024.0 * 1024.0);
        assert_eq!(m.get("status").str(), "fail");
    }
    assert_eq!(cap.get("result").str(), "fail");
}

fn good_cluster(good: &GoodCluster) {
    let config = good.config();
    write_sessions(&config);
    // Keys outside the session layout: one under this cluster name (purge
    // removes it, listings ignore it), one under another name (untouched).
    good.redis_cli(&["-c", "SET", &format!("ORS:{CLUSTER_NAME}:meta"), "x"]);
    good.redis_cli(&["-c", "SET", "ORS:OTHER_NAME:{kept}", "y"]);

    // doctor: a healthy local cluster passes, with warnings only.
    let out = ors(&["doctor"], Some(&config));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    let replicas: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("replicas "))
        .collect();
    assert_eq!(replicas.len(), 3);
    assert!(replicas
        .iter()
        .all(|r| r.contains("WARN") && r.contains("same host")));
    for (check, status) in [
        ("cluster state", "PASS"),
        ("masters", "PASS"),
        ("aof", "PASS"),
        ("maxmemory-policy", "PASS"),
        ("version", "PASS"),
        ("auth", "PASS"),
        ("tls", "WARN"),
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{check} ")))
            .unwrap_or_else(|| panic!("no {check} line in\n{}", out.stdout));
        assert!(line.contains(status), "{line}");
    }
    assert!(out.stdout.contains("appendfsync everysec on all 6 nodes"));
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("latency "))
            .count(),
        6
    );
    assert!(out.stdout.contains("result: WARN"));
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));
    let doc = parse_json(&ors(&["doctor", "--json"], Some(&config)).stdout);
    assert_eq!(doc.get("result").str(), "warn");
    let nodes = doc.get("nodes").arr();
    assert_eq!(nodes.len(), 6);
    assert!(nodes.iter().all(|n| n.get("round_trip_ms").num() >= 0.0));
    assert_eq!(
        nodes
            .iter()
            .filter(|n| n.get("role").str() == "replica")
            .count(),
        3
    );

    // A wrong password: doctor's failed check, without the password in it.
    let wrong = config.replace(PASSWORD, "Wr0ng-Passw0rd");
    let out = ors(&["doctor"], Some(&wrong));
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("connect") && !out.stdout.contains("Wr0ng-Passw0rd"));

    // The same config from a file with ORS's [persistence] section, and from --config.
    let file = Path::new(TMP).join("cli-persistence.cfg");
    let mut text =
        String::from("# ORS application options\n[orchestration]\nsome-option=1\n[persistence]\n");
    text.push_str(&format!(
        "redis-nodes = 127.0.0.1:{GOOD_PORT};127.0.0.1:{}\ncluster-name={CLUSTER_NAME}\npassword={PASSWORD}\n",
        GOOD_PORT + 1
    ));
    std::fs::write(&file, text).expect("write the config file");
    let by_file = ors(
        &[
            "sessions",
            "count",
            "--config-file",
            &file.to_string_lossy(),
        ],
        None,
    );
    let by_flag = ors(&["sessions", "count", "--config", &config], None);
    for out in [&by_file, &by_flag] {
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stdout.contains(&format!("total           {SESSIONS}")),
            "{}",
            out.stdout
        );
    }

    // count and list, with and without a prefix.
    let count = parse_json(&ors(&["sessions", "count", "--json"], Some(&config)).stdout);
    assert_eq!(count.get("count").num(), SESSIONS as f64);
    let per_master: f64 = count
        .get("masters")
        .arr()
        .iter()
        .map(|m| m.get("sessions").num())
        .sum();
    assert_eq!(per_master, SESSIONS as f64);
    assert!(count
        .get("masters")
        .arr()
        .iter()
        .all(|m| m.get("sessions").num() > 0.0));
    let node7 = ors(&["sessions", "count", "--prefix", "node7-"], Some(&config));
    assert!(
        node7.stdout.contains("total           250"),
        "{}",
        node7.stdout
    );
    assert!(node7
        .stderr
        .contains("250 session(s) of cluster-name CLI_TEST with prefix 'node7-'"));
    let glob = parse_json(
        &ors(
            &["sessions", "list", "--prefix", "glob*", "--json"],
            Some(&config),
        )
        .stdout,
    );
    let ids: Vec<&str> = glob
        .get("sessions")
        .arr()
        .iter()
        .map(|s| s.get("id").str())
        .collect();
    assert_eq!(ids, ["glob*id"], "the prefix is literal, not a pattern");
    let list = ors(&["sessions", "list", "-q"], Some(&config));
    assert_eq!(list.code, 0);
    assert_eq!(
        list.stdout.lines().count(),
        1 + SESSIONS,
        "header + one line per id"
    );
    assert!(list.stdout.starts_with("SESSION ID"));
    assert!(list.stderr.is_empty(), "--quiet: {}", list.stderr);
    let listed = parse_json(&ors(&["sessions", "list", "--json", "-q"], Some(&config)).stdout);
    let all: Vec<&str> = listed
        .get("sessions")
        .arr()
        .iter()
        .map(|s| s.get("id").str())
        .collect();
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(all, sorted, "sorted, each id once");
    assert!(all.contains(&TEXT_ID) && all.contains(&"bin-1") && !all.contains(&"meta"));

    // get: raw bytes to a pipe, JSON with the value escaped or in base64, a
    // hexdump with --escaped, status 1 for a missing session.
    let raw = ors_bytes(&["sessions", "get", "bin-1"], &config);
    assert_eq!(raw.0, 0);
    assert_eq!(raw.1, BINARY_VALUE, "raw value on stdout, byte for byte");
    let bin = parse_json(&ors(&["sessions", "get", "bin-1", "--json"], Some(&config)).stdout);
    assert_eq!(bin.get("encoding").str(), "base64");
    assert_eq!(base64_decode(bin.get("value").str()), BINARY_VALUE);
    let text = parse_json(&ors(&["sessions", "get", TEXT_ID, "--json"], Some(&config)).stdout);
    assert_eq!(text.get("encoding").str(), "utf-8");
    assert_eq!(text.get("value").str(), TEXT_VALUE);
    let ttl = text.get("ttl_seconds").num();
    assert!((3500.0..=3600.0).contains(&ttl), "ttl {ttl}");
    assert_eq!(
        text.get("key").str(),
        format!("ORS:{CLUSTER_NAME}:{{{TEXT_ID}}}")
    );
    let dump = ors(&["sessions", "get", "bin-1", "--escaped"], Some(&config));
    assert!(
        dump.stdout.contains("value (binary, hexdump):"),
        "{}",
        dump.stdout
    );
    assert!(
        dump.stdout
            .contains("00000000  00 01 62 69 6e ff 61 72  79 80"),
        "{}",
        dump.stdout
    );
    let missing = ors(&["sessions", "get", "no-such-session"], Some(&config));
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("no session 'no-such-session'"));

    // On a terminal (through script(1), where it exists): a progress line
    // that is cleared, and the value shown rather than dumped raw.
    if have("script") {
        let out = on_a_terminal(
            &format!("'{BIN}' sessions count; '{BIN}' sessions get bin-1"),
            &config,
        );
        assert!(out.contains("\r\x1b[2Kcounting: master 1/3"), "{out:?}");
        assert!(out.contains("value (binary, hexdump):"), "{out:?}");
        assert!(out.contains("ttl "), "{out:?}");
    }

    // capacity: ORS's rules and a measured projection.
    let out = ors(
        &[
            "capacity",
            "--ors-pairs",
            "12",
            "--sessions",
            "100000",
            "--avg-bytes",
            "4K",
            "--sample",
            "100",
        ],
        Some(&config),
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("4: at least 3, about 3 per 9 ORS HA pairs"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("100 session(s), with MEMORY USAGE"),
        "{}",
        out.stdout
    );
    assert!(out
        .stdout
        .contains("WARN  3 masters now; 12 ORS HA pairs call for 4"));
    let cap = parse_json(
        &ors(
            &[
                "capacity",
                "--sessions",
                "30000",
                "--sample",
                "1000",
                "--json",
            ],
            Some(&config),
        )
        .stdout,
    );
    let measured = cap.get("measured");
    assert_eq!(measured.get("method").str(), "memory-usage");
    assert_eq!(measured.get("sessions").num(), SESSIONS as f64);
    assert_eq!(measured.get("sampled").num(), SESSIONS as f64);
    // Mostly 1000-byte values: Redis adds a little under 200 bytes to each.
    let each = measured.get("bytes_per_session").num();
    assert!((1000.0..1400.0).contains(&each), "bytes per session {each}");
    let masters = cap.get("projection").get("masters").arr();
    assert_eq!(masters.len(), 3);
    let planned: f64 = masters
        .iter()
        .map(|m| m.get("sessions_planned").num())
        .sum();
    assert_eq!(planned, 30000.0);
    for m in masters {
        assert!(m.get("projected_bytes").num() > m.get("used_memory").num());
        assert_eq!(m.get("limit").str(), "host-memory");
    }

    // del: UNLINK, then nothing left to delete.
    let out = ors(&["sessions", "del", "node8-sess-0001"], Some(&config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out
        .stdout
        .contains("deleted session 'node8-sess-0001' (UNLINK on 127.0.0.1:"));
    let again = ors(
        &["sessions", "del", "node8-sess-0001", "--json"],
        Some(&config),
    );
    assert_eq!(again.code, 1);
    assert_eq!(parse_json(&again.stdout).get("deleted"), &J::Bool(false));
    let node8 = parse_json(
        &ors(
            &["sessions", "count", "--prefix", "node8-", "--json"],
            Some(&config),
        )
        .stdout,
    );
    assert_eq!(node8.get("count").num(), 49.0);

    // purge: refused without --yes (nothing deleted), then everything under
    // ORS:CLI_TEST: goes, and the other cluster name's key stays.
    let keys = SESSIONS - 1 + 1; // one session deleted, plus the meta key
    let refused = ors(&["sessions", "purge"], Some(&config));
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .stderr
            .contains(&format!("would delete {keys} key(s)")),
        "{}",
        refused.stderr
    );
    let count = parse_json(&ors(&["sessions", "count", "--json"], Some(&config)).stdout);
    assert_eq!(count.get("count").num(), (SESSIONS - 1) as f64);
    let purged = ors(&["sessions", "purge", "--yes", "--json"], Some(&config));
    assert_eq!(purged.code, 0, "{}", purged.stderr);
    let report = parse_json(&purged.stdout);
    assert_eq!(report.get("deleted").num(), keys as f64);
    assert_eq!(report.get("verified"), &J::Bool(true));
    let count = parse_json(&ors(&["sessions", "count", "--json"], Some(&config)).stdout);
    assert_eq!(count.get("count").num(), 0.0);
    let other = config.replace(CLUSTER_NAME, "OTHER_NAME");
    let kept = parse_json(&ors(&["sessions", "list", "--json"], Some(&other)).stdout);
    assert_eq!(kept.get("count").num(), 1.0);
    assert_eq!(kept.get("sessions").arr()[0].get("id").str(), "kept");
}

// ------------------------------------------------------------ the sessions

const SESSIONS: usize = 250 + 50 + 3;
const TEXT_ID: &str = "text-1";
const TEXT_VALUE: &str = "line 1 \"quoted\" \\ back\nline 2\ttab é \u{1}";
const BINARY_VALUE: &[u8] = b"\x00\x01bin\xffary\x80";

/// Writes the test sessions through the library's C API, as ORS would.
fn write_sessions(config: &str) {
    use ors_redis::ffi::{ors_redis_init, ors_redis_shutdown, ors_session_put};
    let c_config = CString::new(config).expect("no NUL in the config");
    assert_eq!(ors_redis_init(c_config.as_ptr()), 0, "ors_redis_init");
    let value = vec![b'v'; 1000];
    let put = |id: &str, data: &[u8], ttl: u32| {
        let id = CString::new(id).expect("no NUL in ids");
        assert_eq!(
            ors_session_put(id.as_ptr(), data.as_ptr(), data.len(), ttl),
            0
        );
    };
    for i in 1..=250 {
        put(&format!("node7-sess-{i:04}"), &value, 0);
    }
    for i in 1..=50 {
        put(&format!("node8-sess-{i:04}"), &value, 0);
    }
    put(TEXT_ID, TEXT_VALUE.as_bytes(), 3600);
    put("bin-1", BINARY_VALUE, 0);
    put("glob*id", b"g", 0);
    assert_eq!(ors_redis_shutdown(), 0);
}

// ------------------------------------------------------- running the command

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the command with `config` in ORS_REDIS_CONFIG (or without it).
fn ors(args: &[&str], config: Option<&str>) -> Run {
    let out = command(args, config);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ors_bytes(args: &[&str], config: &str) -> (i32, Vec<u8>) {
    let out = command(args, Some(config));
    (out.status.code().unwrap_or(-1), out.stdout)
}

fn command(args: &[&str], config: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("ORS_REDIS_CONFIG")
        .stdin(Stdio::null());
    if let Some(c) = config {
        cmd.env("ORS_REDIS_CONFIG", c);
    }
    cmd.output().expect("run ors-redis")
}

/// Runs a shell command line under script(1), so that it has a terminal.
fn on_a_terminal(line: &str, config: &str) -> String {
    let out = Command::new("script")
        .args(["-qec", line, "/dev/null"])
        .env("ORS_REDIS_CONFIG", config)
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

// ------------------------------------------------------------ the clusters

/// The good cluster, from c_tests/cluster.sh; stopped (by its pidfiles) on drop.
struct GoodCluster {
    dir: PathBuf,
    extra_conf: PathBuf,
}

impl GoodCluster {
    fn start() -> Self {
        let dir = Path::new(TMP).join("cli-good-cluster");
        std::fs::create_dir_all(&dir).expect("create the cluster dir");
        let extra_conf = Path::new(TMP).join("cli-good-cluster.conf");
        std::fs::write(
            &extra_conf,
            format!("requirepass {PASSWORD}\nmasterauth {PASSWORD}\n"),
        )
        .expect("write the extra config");
        let cluster = GoodCluster { dir, extra_conf };
        let out = cluster.script("start");
        assert!(
            out.status.success(),
            "cluster.sh start failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn script(&self, action: &str) -> Output {
        Command::new(Path::new(REPO).join("c_tests/cluster.sh"))
            .arg(action)
            .env("ORS_CLUSTER_PORT", GOOD_PORT.to_string())
            .env("ORS_CLUSTER_DIR", &self.dir)
            .env("ORS_CLUSTER_EXTRA_CONF", &self.extra_conf)
            .env(
                "ORS_REDIS_CLI_ARGS",
                format!("-a {PASSWORD} --no-auth-warning"),
            )
            .stdin(Stdio::null())
            .output()
            .expect("run c_tests/cluster.sh")
    }

    fn config(&self) -> String {
        format!(
            "redis-nodes=127.0.0.1:{GOOD_PORT};127.0.0.1:{} cluster-name={CLUSTER_NAME} password={PASSWORD}",
            GOOD_PORT + 1
        )
    }

    fn redis_cli(&self, args: &[&str]) {
        let status = Command::new("redis-cli")
            .args([
                "-p",
                &GOOD_PORT.to_string(),
                "-a",
                PASSWORD,
                "--no-auth-warning",
            ])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("run redis-cli");
        assert!(status.success(), "redis-cli {args:?}");
    }
}

impl Drop for GoodCluster {
    fn drop(&mut self) {
        let out = self.script("stop");
        if !out.status.success() {
            eprintln!(
                "cluster.sh stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The weak cluster: plain redis-server children, stopped by pid on drop.
struct WeakCluster {
    nodes: Vec<Child>,
}

impl WeakCluster {
    fn start() -> Self {
        let dir = Path::new(TMP).join("cli-weak-cluster");
        stop_leftovers(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        let mut cluster = WeakCluster { nodes: Vec::new() };
        for port in Self::ports() {
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("create a node dir");
            let node_dir = node_dir.to_string_lossy().into_owned();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--protected-mode", "no", "--daemonize", "no"])
                .args([
                    "--dir",
                    &node_dir,
                    "--pidfile",
                    &format!("{node_dir}/redis.pid"),
                ])
                .args(["--logfile", &format!("{node_dir}/redis.log")])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--cluster-node-timeout", "2000"])
                .args(["--appendonly", "no", "--save", ""])
                .args(["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            cluster.nodes.push(child);
        }
        for port in Self::ports() {
            wait_until(
                Duration::from_secs(15),
                &format!("node {port} answers PING"),
                || cli_out(port, &["PING"]).trim() == "PONG",
            );
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in Self::ports() {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        wait_until(Duration::from_secs(30), "the weak cluster is ok", || {
            Self::ports().all(|port| {
                let info = cli_out(port, &["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{WEAK_NODES}"))
            })
        });
        cluster
    }

    fn ports() -> impl Iterator<Item = u16> {
        WEAK_PORT..WEAK_PORT + WEAK_NODES
    }

    fn config(&self) -> String {
        format!("redis-nodes=127.0.0.1:{WEAK_PORT} cluster-name={CLUSTER_NAME}")
    }
}

impl Drop for WeakCluster {
    fn drop(&mut self) {
        for child in &self.nodes {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: a plain kill(2) of our own child, which we have not reaped yet.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for child in &mut self.nodes {
            while Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Stops a redis-server left by an earlier run that was killed before its
/// guard could run (only the pid in our own pidfile, and only if it is a
/// redis-server on that port).
fn stop_leftovers(dir: &Path) {
    for port in WeakCluster::ports() {
        let pidfile = dir.join(port.to_string()).join("redis.pid");
        let Ok(text) = std::fs::read_to_string(&pidfile) else {
            continue;
        };
        let Ok(pid) = text.trim().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("redis-server") && cmdline.contains(&format!(":{port}")) {
            // SAFETY: kill(2) of a pid checked to be our old redis-server.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            wait_until(Duration::from_secs(10), "an old node exits", || {
                !Path::new(&format!("/proc/{pid}")).exists()
            });
        }
    }
}

fn cli_out(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ------------------------------------------- a strict JSON reader, for checks

#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn get(&self, key: &str) -> &J {
        match self {
            J::Obj(fields) => fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {key:?} in {self:?}")),
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn str(&self) -> &str {
        match self {
            J::Str(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }

    fn num(&self) -> f64 {
        match self {
            J::Num(n) => *n,
            _ => panic!("not a number: {self:?}"),
        }
    }

    fn arr(&self) -> &[J] {
        match self {
            J::Arr(a) => a,
            _ => panic!("not an array: {self:?}"),
        }
    }
}

/// Parses RFC 8259 JSON strictly; panics (failing the test) on anything else.
fn parse_json(text: &str) -> J {
    let mut p = JsonReader {
        s: text.as_bytes(),
        i: 0,
    };
    let value = p.value();
    p.ws();
    assert_eq!(p.i, p.s.len(), "trailing data after JSON in {text:?}");
    value
}

struct JsonReader<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonReader<'_> {
    fn fail(&self, what: &str) -> ! {
        panic!(
            "bad JSON at byte {}: {what} in {:?}",
            self.i,
            String::from_utf8_lossy(self.s)
        )
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> J {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.eat("}") {
                    return J::Obj(fields);
                }
                loop {
                    self.ws();
                    let key = self.string();
                    self.ws();
                    if !self.eat(":") {
                        self.fail("expected ':'");
                    }
                    fields.push((key, self.value()));
                    self.ws();
                    if self.eat("}") {
                        return J::Obj(fields);
                    }
                    if !self.eat(",") {
                        self.fail("expected ',' or '}'");
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    return J::Arr(items);
                }
                loop {
                    items.push(self.value());
                    self.ws();
                    if self.eat("]") {
                        return J::Arr(items);
                    }
                    if !self.eat(",") {
                        self.fail("expected ',' or ']'");
                    }
                }
            }
            Some(b'"') => J::Str(self.string()),
            Some(b't') if self.eat("true") => J::Bool(true),
            Some(b'f') if self.eat("false") => J::Bool(false),
            Some(b'n') if self.eat("null") => J::Null,
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.fail("expected a value"),
        }
    }

    fn number(&mut self) -> J {
        let start = self.i;
        self.eat("-");
        let digits = |r: &mut Self| {
            let from = r.i;
            while r.i < r.s.len() && r.s[r.i].is_ascii_digit() {
                r.i += 1;
            }
            r.i - from
        };
        let int_start = self.i;
        if digits(self) == 0 || (self.s[int_start] == b'0' && self.i - int_start > 1) {
            self.fail("bad integer part");
        }
        if self.eat(".") && digits(self) == 0 {
            self.fail("bad fraction");
        }
        if self.eat("e") || self.eat("E") {
            let _ = self.eat("+") || self.eat("-");
            if digits(self) == 0 {
                self.fail("bad exponent");
            }
        }
        let text =
            std::str::from_utf8(&self.s[start..self.i]).unwrap_or_else(|_| self.fail("utf-8"));
        J::Num(text.parse().unwrap_or_else(|_| self.fail("number")))
    }

    fn hex4(&mut self) -> u32 {
        let text = self
            .s
            .get(self.i..self.i + 4)
            .unwrap_or_else(|| self.fail("short \\u"));
        let text = std::str::from_utf8(text).unwrap_or_else(|_| self.fail("\\u"));
        self.i += 4;
        u32::from_str_radix(text, 16).unwrap_or_else(|_| self.fail("bad \\u"))
    }

    fn string(&mut self) -> String {
        if !self.eat("\"") {
            self.fail("expected a string");
        }
        let mut out = String::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                self.fail("unterminated string");
            };
            match b {
                b'"' => {
                    self.i += 1;
                    return out;
                }
                b'\\' => {
                    self.i += 1;
                    let Some(&e) = self.s.get(self.i) else {
                        self.fail("unterminated escape");
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut code = self.hex4();
                            if (0xD800..0xDC00).contains(&code) {
                                if !self.eat("\\u") {
                                    self.fail("lone surrogate");
                                }
                                let low = self.hex4();
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            out.push(
                                char::from_u32(code).unwrap_or_else(|| self.fail("bad code point")),
                            );
                        }
                        _ => self.fail("unknown escape"),
                    }
                }
                0..=0x1f => self.fail("raw control character in a string"),
                _ => {
                    let rest = std::str::from_utf8(&self.s[self.i..]).unwrap_or_else(|e| {
                        std::str::from_utf8(&self.s[self.i..self.i + e.valid_up_to()])
                            .unwrap_or_default()
                    });
                    let c = rest
                        .chars()
                        .next()
                        .unwrap_or_else(|| self.fail("bad UTF-8"));
                    out.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 {text:?}"),
        }
    };
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|&c| c != b'=').collect();
        let mut n = 0u32;
        for (i, &c) in data.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        for i in 0..data.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}
