//! The `ors-redis` operator command, run as a program against real local
//! servers that the tests start and stop themselves (ports from
//! `ORS_TEST_PORT`, default 7000, as `c_tests/run-tests.sh` sets it; B below):
//!
//! - a good cluster: `c_tests/cluster.sh` on B+60..B+65 (3 masters + 3
//!   replicas, AOF on, a password, and the ACL users of
//!   docs/operators.md), with sessions written through the C API; one of
//!   its masters is killed to see `doctor` and `sessions get` during a
//!   failover, and restarted;
//! - a weak cluster: three plain `redis-server` processes on B+70..B+72,
//!   joined by `redis-cli --cluster create --cluster-replicas 0`, with AOF
//!   off and `maxmemory-policy allkeys-lru`, which `doctor` must flag;
//! - a standalone server on B+66 and a Sentinel on B+67, which `doctor`
//!   must report as rows, not as usage errors; nothing listens on B+69.
//!
//! `sessions export` reads from the good cluster and `sessions import`
//! writes into the weak one.
//!
//! Each scenario is a test of its own, so one failure hides none of the
//! others, and one runs alone by name:
//! `cargo test --features cli --test ors_redis_cli failover`. The servers
//! are shared (`Servers`): each is started by the first scenario that needs
//! it, and all are stopped when the test process exits (atexit(3), by pid
//! or pidfile). Scenarios take turns (one lock), because they share the
//! servers' state; a scenario that changes that state puts it back (a
//! killed master restarted, an open slot closed) or says so (`del_and_purge`
//! has the sessions written again for the next one). Every `--json` output
//! is checked against the field reference in docs/operators.md, and once
//! every scenario has passed in one run, that every command's output was.
//! It needs `redis-server` and `redis-cli` (`c_tests/ensure-deps.sh`
//! installs them; CI always has them).
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, Once, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ors-redis");
const REPO: &str = env!("CARGO_MANIFEST_DIR");
const TMP: &str = env!("CARGO_TARGET_TMPDIR");

const WEAK_NODES: u16 = 3;
const PASSWORD: &str = "cli-test-s3cret";
const CLUSTER_NAME: &str = "CLI_TEST";

/// The operator's read-only ACL rule and what del/purge add, as
/// docs/operators.md gives them (the test reads them from there).
const OPERATOR_USER: &str = "ors-operator";
const OPERATOR_PASSWORD: &str = "operator-pw";
const OPERATOR_RW_USER: &str = "ors-operator-rw";
/// The library's own least-privilege user (docs/security.md's rule).
const LIBRARY_USER: &str = "ors";
const LIBRARY_PASSWORD: &str = "library-pw";

fn base_port() -> u16 {
    std::env::var("ORS_TEST_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(7000)
}

fn good_port() -> u16 {
    base_port() + 60
}

fn weak_port() -> u16 {
    base_port() + 70
}

fn standalone_port() -> u16 {
    base_port() + 66
}

fn sentinel_port() -> u16 {
    base_port() + 67
}

fn dead_port() -> u16 {
    base_port() + 69
}

// ------------------------------------------------------------ the scenarios

/// Every scenario's name, as it calls `Scenario::start`: once all of them
/// have passed in one run, the JSON coverage is checked.
const SCENARIOS: &[&str] = &[
    "help_version_completions",
    "usage_and_config_errors",
    "nothing_listens",
    "not_a_cluster",
    "weak_cluster_doctor",
    "weak_cluster_open_slot",
    "weak_cluster_capacity",
    "good_cluster_doctor",
    "log_level_and_verbose",
    "wrong_password_and_dead_seed",
    "config_file_flag_and_env",
    "sessions_count_and_list",
    "sessions_get",
    "max_value_bytes",
    "terminal_progress_and_value",
    "pipes_closed_early",
    "good_cluster_capacity",
    "least_privilege",
    "failover",
    "del_and_purge",
    "export_import",
    "dictionary_train_and_use",
];

/// The servers the scenarios share; each is started on first use.
struct Servers {
    lone: Option<LoneServers>,
    weak: Option<WeakCluster>,
    good: Option<GoodCluster>,
    /// The good cluster holds the sessions `write_sessions` writes, and the
    /// two keys outside the session layout.
    sessions_written: bool,
}

/// Held by the scenario that runs: one at a time.
static SERVERS: Mutex<Servers> = Mutex::new(Servers {
    lone: None,
    weak: None,
    good: None,
    sessions_written: false,
});

/// The scenarios that passed in this run.
static PASSED: Mutex<BTreeSet<&str>> = Mutex::new(BTreeSet::new());

/// One scenario's turn: the servers, for it alone until it ends.
struct Scenario {
    name: &'static str,
    started: Instant,
    servers: MutexGuard<'static, Servers>,
}

impl Scenario {
    /// Waits for the turn of scenario `name`; `None` (skipped) when
    /// redis-server or redis-cli is missing, which CI does not allow.
    fn start(name: &'static str) -> Option<Self> {
        assert!(SCENARIOS.contains(&name), "{name} is listed in SCENARIOS");
        if !have("redis-server") || !have("redis-cli") {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server and redis-cli are needed (c_tests/ensure-deps.sh installs them)"
            );
            eprintln!("skipped: redis-server or redis-cli not installed");
            return None;
        }
        // A scenario that failed leaves the lock poisoned, and the servers
        // as its guards put them back: the next one runs on.
        let servers = SERVERS.lock().unwrap_or_else(PoisonError::into_inner);
        Some(Scenario {
            name,
            started: Instant::now(),
            servers,
        })
    }

    fn lone(&mut self) -> &LoneServers {
        stop_servers_at_exit();
        self.servers.lone.get_or_insert_with(LoneServers::start)
    }

    fn weak(&mut self) -> &WeakCluster {
        stop_servers_at_exit();
        self.servers.weak.get_or_insert_with(WeakCluster::start)
    }

    /// The good cluster, holding the test sessions.
    fn good(&mut self) -> &GoodCluster {
        stop_servers_at_exit();
        let servers = &mut *self.servers;
        let good = servers.good.get_or_insert_with(GoodCluster::start);
        if !servers.sessions_written {
            write_sessions(&good.config());
            // Keys outside the session layout: one under this cluster name
            // (purge removes it, listings ignore it), one under another
            // name (untouched).
            good.redis_cli(&["-c", "SET", &format!("ORS:{CLUSTER_NAME}:meta"), "x"]);
            good.redis_cli(&["-c", "SET", "ORS:OTHER_NAME:{kept}", "y"]);
            servers.sessions_written = true;
        }
        good
    }

    /// Both clusters, for export and import.
    fn good_and_weak(&mut self) -> (&GoodCluster, &WeakCluster) {
        self.good();
        self.weak();
        let servers = &*self.servers;
        match (&servers.good, &servers.weak) {
            (Some(good), Some(weak)) => (good, weak),
            _ => unreachable!("both started above"),
        }
    }

    /// The good cluster's sessions are about to change: the next scenario
    /// that needs them has them written again.
    fn sessions_change(&mut self) {
        self.servers.sessions_written = false;
    }

    /// The scenario ran to its end. When every scenario has, every
    /// command's `--json` output has been checked against the reference.
    fn passed(self) {
        eprintln!(
            "ors_redis_cli: {} passed in {:.1} s",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
        let mut passed = PASSED.lock().unwrap_or_else(PoisonError::into_inner);
        passed.insert(self.name);
        if passed.len() < SCENARIOS.len() {
            return;
        }
        let validated = VALIDATED.lock().map(|v| v.clone()).unwrap_or_default();
        let documented: BTreeSet<String> = reference()
            .keys()
            .filter(|k| *k != "envelope")
            .cloned()
            .collect();
        assert_eq!(
            validated, documented,
            "every command's --json output was checked against docs/operators.md"
        );
        eprintln!(
            "ors_redis_cli: all {} scenarios passed; the --json output of {} commands checked",
            SCENARIOS.len(),
            validated.len()
        );
    }
}

/// Stops the shared servers when the test process exits (libtest returns
/// from main or calls exit(3), both of which run atexit handlers); a
/// static is never dropped otherwise.
fn stop_servers_at_exit() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: atexit(3) with a function that takes nothing, returns
        // nothing and lets no panic out.
        let rc = unsafe { libc::atexit(stop_servers) };
        assert_eq!(rc, 0, "atexit");
    });
}

extern "C" fn stop_servers() {
    let _ = std::panic::catch_unwind(|| {
        let mut servers = SERVERS.lock().unwrap_or_else(PoisonError::into_inner);
        drop(servers.good.take());
        drop(servers.weak.take());
        drop(servers.lone.take());
    });
}

/// Runs its closure when dropped: puts a server's state back also when an
/// assertion fails.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

// ---------------------------------------------------------- no server

/// --help of every subcommand, --version and shell completions.
#[test]
fn help_version_completions() {
    let Some(scenario) = Scenario::start("help_version_completions") else {
        return;
    };
    let top = ors(&["--help"], None);
    assert_eq!(top.code, 0);
    assert!(top.stdout.contains("Usage: ors-redis [OPTIONS] <COMMAND>"));
    assert!(top.stdout.contains("ORS_REDIS_CONFIG]"), "{}", top.stdout);
    for (args, usage) in [
        (&["doctor", "--help"][..], "Usage: ors-redis doctor"),
        (&["capacity", "-h"][..], "Usage: ors-redis capacity"),
        (&["sessions", "--help"][..], "Usage: ors-redis sessions"),
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
            "Usage: ors-redis sessions get",
        ),
        (
            &["sessions", "del", "--help"][..],
            "Usage: ors-redis sessions del",
        ),
        (
            &["help", "sessions", "purge"][..],
            "Usage: ors-redis sessions purge",
        ),
        (
            &["sessions", "export", "--help"][..],
            "Usage: ors-redis sessions export",
        ),
        (
            &["sessions", "import", "--help"][..],
            "Usage: ors-redis sessions import",
        ),
    ] {
        let out = ors(args, None);
        assert_eq!(out.code, 0, "{args:?}");
        assert!(out.stdout.contains(usage), "{args:?}: {}", out.stdout);
    }
    let doctor = ors(&["doctor", "--help"], None);
    assert!(doctor.stdout.contains("open_slots") && doctor.stdout.contains("Exit status"));
    let version = ors(&["--version"], None);
    assert_eq!(
        version.stdout.trim(),
        format!("ors-redis {}", env!("CARGO_PKG_VERSION"))
    );
    let completions = ors(&["completions", "bash"], None);
    assert_eq!(completions.code, 0);
    assert!(
        completions.stdout.contains("complete -F _ors__redis")
            && completions.stdout.contains("doctor")
    );
    scenario.passed();
}

#[test]
fn usage_and_config_errors() {
    let Some(scenario) = Scenario::start("usage_and_config_errors") else {
        return;
    };
    // Usage and config errors: status 2, a message that names the problem.
    let nowhere = format!("redis-nodes=127.0.0.1:{}", dead_port());
    let nowhere_t = format!("{nowhere} cluster-name=T");
    for (args, config, message) in [
        (&[][..], None, "Usage: ors-redis"),
        (&["doctor"][..], None, "no config"),
        (
            &["frobnicate"][..],
            None,
            "unrecognized subcommand 'frobnicate'",
        ),
        (
            &["doctr"][..],
            None,
            "similar subcommands exist: 'dictionary', 'doctor'",
        ),
        (&["sessions"][..], None, "Usage: ors-redis sessions"),
        (
            &["sessions", "grab"][..],
            None,
            "unrecognized subcommand 'grab'",
        ),
        (&["sessions", "get"][..], None, "<ID>"),
        (
            &["doctor", "--yes"][..],
            None,
            "unexpected argument '--yes'",
        ),
        (
            &["sessions", "get", "x", "--raw", "--escaped"][..],
            None,
            "cannot be used with",
        ),
        (
            &["doctor", "--bogus"][..],
            None,
            "unexpected argument '--bogus'",
        ),
        (
            &["capacity", "--sessions", "many"][..],
            None,
            "invalid value 'many' for '--sessions <N>'",
        ),
        (
            &["doctor"][..],
            Some(nowhere.as_str()),
            "missing required key 'cluster-name'",
        ),
        (
            &["doctor", "--config-file", "/nonexistent/ors.cfg"][..],
            None,
            "cannot read --config-file",
        ),
        (
            &[
                "doctor",
                "--config",
                "x",
                "--config-file",
                "/nonexistent/ors.cfg",
            ][..],
            None,
            "not both",
        ),
        (
            &["sessions", "get", "a{b"][..],
            Some(nowhere_t.as_str()),
            "brace",
        ),
        (
            &["sessions", "export", "--json"][..],
            Some(nowhere_t.as_str()),
            "give the stream a --file",
        ),
        (
            &["sessions", "export", "--file", "/nonexistent/dir/s.jsonl"][..],
            Some(nowhere_t.as_str()),
            "cannot create /nonexistent/dir/s.jsonl",
        ),
        (
            &["sessions", "import", "--file", "/nonexistent/s.jsonl"][..],
            Some(nowhere_t.as_str()),
            "cannot open /nonexistent/s.jsonl",
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
    scenario.passed();
}

#[test]
fn nothing_listens() {
    let Some(scenario) = Scenario::start("nothing_listens") else {
        return;
    };
    let nowhere_t = format!("redis-nodes=127.0.0.1:{} cluster-name=T", dead_port());
    // Nothing listens: doctor reports that as a row (status 1), in the
    // table and in the JSON; the other commands say where they could not go.
    let config = format!("{nowhere_t} redis-connect-timeout=300");
    let out = ors(&["doctor"], Some(&config));
    assert_eq!(out.code, 1);
    let seed = row(&out.stdout, "seed");
    assert!(
        seed.contains("FAIL") && seed.contains("not reachable"),
        "{seed}"
    );
    let (out, env) = ors_json(&["doctor"], &config, "doctor");
    assert_eq!(out.code, 1);
    assert_eq!(env["ok"], Value::Bool(false));
    assert_eq!(env["result"]["checks"][0]["id"], "seed");
    let (out, env) = ors_json(&["sessions", "count"], &config, "sessions_count");
    assert_eq!(out.code, 1);
    assert!(env["result"].is_null());
    let dead = format!("127.0.0.1:{}", dead_port());
    assert!(s(&env["error"]["message"]).contains(&dead), "{env}");
    assert!(out.stderr.contains(&dead), "{}", out.stderr);
    scenario.passed();
}

// ---------------------------------------------------- not a cluster

/// A standalone server and a Sentinel in redis-nodes: doctor's rows, exit 1.
#[test]
fn not_a_cluster() {
    let Some(mut scenario) = Scenario::start("not_a_cluster") else {
        return;
    };
    let servers = scenario.lone();
    for (port, what) in [
        (standalone_port(), "is a standalone Redis"),
        (sentinel_port(), "is a Redis Sentinel"),
    ] {
        let config = format!("redis-nodes=127.0.0.1:{port} cluster-name=T");
        let out = ors(&["doctor"], Some(&config));
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        let seed = row(&out.stdout, "seed");
        assert!(
            seed.contains("FAIL") && seed.contains(what),
            "{}",
            out.stdout
        );
        let (out, env) = ors_json(&["doctor"], &config, "doctor");
        assert_eq!(out.code, 1);
        assert!(s(&env["result"]["checks"][0]["detail"]).contains(what));
        // The other commands: a config problem, status 2.
        assert_eq!(ors(&["sessions", "count"], Some(&config)).code, 2);
    }
    // A cluster seed behind a standalone one: the cluster is checked, and
    // the standalone seed is a failed row of its own.
    let _ = servers;
    scenario.passed();
}

// ------------------------------------------------------ weak cluster

/// doctor fails a cluster without replicas, AOF or a safe eviction policy.
#[test]
fn weak_cluster_doctor() {
    let Some(mut scenario) = Scenario::start("weak_cluster_doctor") else {
        return;
    };
    let config = scenario.weak().config();
    let out = ors(&["doctor"], Some(&config));
    assert_eq!(
        out.code, 1,
        "doctor must fail a weak cluster:\n{}",
        out.stdout
    );
    let replicas = rows(&out.stdout, "replicas");
    assert_eq!(replicas.len(), 3, "{}", out.stdout);
    assert!(replicas
        .iter()
        .all(|r| r.contains("FAIL") && r.contains("no working replica")));
    let aof = row(&out.stdout, "aof");
    assert!(aof.contains("FAIL") && aof.contains("appendonly no"));
    let eviction = row(&out.stdout, "maxmemory_policy");
    assert!(eviction.contains("FAIL") && eviction.contains("allkeys-lru on all 3 nodes"));
    for (check, status) in [
        ("cluster_state", "PASS"),
        ("open_slots", "PASS"),
        ("slot_map", "PASS"),
        ("masters", "PASS"),
        ("auth", "WARN"),
    ] {
        assert!(
            row(&out.stdout, check).contains(status),
            "{check}: {}",
            out.stdout
        );
    }
    assert_eq!(rows(&out.stdout, "latency").len(), 3);
    assert!(out.stdout.contains("result: FAIL"));

    let (out, env) = ors_json(&["doctor"], &config, "doctor");
    assert_eq!(out.code, 1);
    let doc = &env["result"];
    assert_eq!(doc["status"], "fail");
    assert_eq!(env["ok"], Value::Bool(false));
    let failed: Vec<&str> = a(&doc["checks"])
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| s(&c["id"]))
        .collect();
    assert_eq!(
        failed,
        [
            "replicas",
            "replicas",
            "replicas",
            "aof",
            "maxmemory_policy"
        ]
    );
    assert_eq!(a(&doc["nodes"]).len(), 3);
    assert_eq!(doc["nodes"][0]["aof"], Value::Bool(false));
    scenario.passed();
}

#[test]
fn weak_cluster_open_slot() {
    let Some(mut scenario) = Scenario::start("weak_cluster_open_slot") else {
        return;
    };
    let config = scenario.weak().config();
    // An open slot (a resharding left half done): a warning, as
    // `redis-cli --cluster check` gives.
    let target = cli_out(weak_port() + 1, &["CLUSTER", "MYID"]);
    let slot = cli_out(
        weak_port(),
        &["CLUSTER", "SETSLOT", "0", "MIGRATING", target.trim()],
    );
    assert_eq!(slot.trim(), "OK");
    let _stable = OnDrop(|| {
        cli_out(weak_port(), &["CLUSTER", "SETSLOT", "0", "STABLE"]);
    });
    let out = ors(&["doctor"], Some(&config));
    let open = row(&out.stdout, "open_slots");
    assert!(
        open.contains("WARN")
            && open.contains(&format!(
                "slot 0 migrating to 127.0.0.1:{} (on 127.0.0.1:{})",
                weak_port() + 1,
                weak_port()
            )),
        "{}",
        out.stdout
    );
    scenario.passed();
}

#[test]
fn weak_cluster_capacity() {
    let Some(mut scenario) = Scenario::start("weak_cluster_capacity") else {
        return;
    };
    let config = scenario.weak().config();
    // 64 MiB per master cannot hold a million 4 KiB sessions.
    let (out, env) = ors_json(
        &["capacity", "--sessions", "1000000", "--avg-bytes", "4K"],
        &config,
        "capacity",
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    let cap = &env["result"];
    assert_eq!(n(&cap["measured"]["sessions"]), 0.0);
    assert_eq!(cap["projection"]["source"], "avg_bytes_estimate");
    for m in a(&cap["projection"]["masters"]) {
        assert_eq!(m["budget"], "maxmemory");
        assert_eq!(n(&m["budget_bytes"]), 64.0 * 1024.0 * 1024.0);
        assert_eq!(m["status"], "fail");
    }
    assert_eq!(cap["status"], "fail");
    assert_eq!(env["ok"], Value::Bool(false));
    scenario.passed();
}

// ------------------------------------------------------ good cluster

#[test]
fn good_cluster_doctor() {
    let Some(mut scenario) = Scenario::start("good_cluster_doctor") else {
        return;
    };
    let config = scenario.good().config();
    // doctor: a healthy local cluster passes, with warnings only.
    let out = ors(&["doctor"], Some(&config));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    let replicas = rows(&out.stdout, "replicas");
    assert_eq!(replicas.len(), 3);
    assert!(replicas
        .iter()
        .all(|r| r.contains("WARN") && r.contains("same host")));
    for (check, status) in [
        ("cluster_state", "PASS"),
        ("open_slots", "PASS"),
        ("slot_map", "PASS"),
        ("masters", "PASS"),
        ("aof", "PASS"),
        ("appendfsync", "PASS"),
        ("maxmemory_policy", "PASS"),
        ("version", "PASS"),
        ("auth", "PASS"),
        ("tls", "WARN"),
    ] {
        let line = row(&out.stdout, check);
        assert!(line.contains(status), "{line}");
    }
    assert!(row(&out.stdout, "appendfsync").contains("appendfsync everysec on all 6 nodes"));
    assert!(row(&out.stdout, "slot_map").contains("6 node(s) agree"));
    assert_eq!(rows(&out.stdout, "latency").len(), 6);
    assert!(out.stdout.contains("result: WARN"));
    assert!(out.stdout.starts_with(&format!(
        "ors-redis doctor: cluster-name {CLUSTER_NAME}, 3 masters and 3 replicas"
    )));
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));
    let (_, env) = ors_json(&["doctor"], &config, "doctor");
    let doc = &env["result"];
    assert_eq!(doc["status"], "warn");
    assert_eq!(env["ok"], Value::Bool(true));
    let nodes = a(&doc["nodes"]);
    assert_eq!(nodes.len(), 6);
    assert!(nodes
        .iter()
        .all(|n| n["round_trip_ms"].as_f64() >= Some(0.0)));
    assert_eq!(nodes.iter().filter(|n| n["role"] == "replica").count(), 3);
    assert_eq!((n(&doc["masters"]), n(&doc["replicas"])), (3.0, 3.0));
    scenario.passed();
}

#[test]
fn log_level_and_verbose() {
    let Some(mut scenario) = Scenario::start("log_level_and_verbose") else {
        return;
    };
    let config = scenario.good().config();
    // log-level and -v reach the command's own log lines (stderr).
    let quiet = ors(&["doctor"], Some(&config));
    assert!(!quiet.stderr.contains("slot map read"), "{}", quiet.stderr);
    let verbose = ors(&["-v", "doctor"], Some(&config));
    assert!(
        verbose.stderr.contains("slot map read"),
        "{}",
        verbose.stderr
    );
    let by_config = ors(&["doctor"], Some(&format!("{config} log-level=info")));
    assert!(
        by_config.stderr.contains("slot map read"),
        "{}",
        by_config.stderr
    );
    scenario.passed();
}

#[test]
fn wrong_password_and_dead_seed() {
    let Some(mut scenario) = Scenario::start("wrong_password_and_dead_seed") else {
        return;
    };
    let config = scenario.good().config();
    // A wrong password: doctor's failed row, without the password in it.
    let wrong = config.replace(PASSWORD, "Wr0ng-Passw0rd");
    let out = ors(&["doctor"], Some(&wrong));
    assert_eq!(out.code, 1);
    assert!(row(&out.stdout, "seed").contains("FAIL") && !out.stdout.contains("Wr0ng-Passw0rd"));

    // A seed that is down in front of a working one: a warning row of its
    // own, and the cluster is checked through the next seed.
    let dead_first = format!(
        "redis-nodes=127.0.0.1:{};127.0.0.1:{} cluster-name={CLUSTER_NAME} password={PASSWORD}",
        dead_port(),
        good_port()
    );
    let out = ors(&["doctor"], Some(&dead_first));
    assert_eq!(out.code, 0, "{}", out.stdout);
    let seed = row(&out.stdout, "seed");
    assert!(
        seed.contains("WARN") && seed.contains("not reachable"),
        "{seed}"
    );
    assert_eq!(rows(&out.stdout, "latency").len(), 6);
    scenario.passed();
}

#[test]
fn config_file_flag_and_env() {
    let Some(mut scenario) = Scenario::start("config_file_flag_and_env") else {
        return;
    };
    let config = scenario.good().config();
    let wrong = config.replace(PASSWORD, "Wr0ng-Passw0rd");
    // The same config from a file with ORS's [persistence] section, and from --config.
    let file = Path::new(TMP).join("cli-persistence.cfg");
    let mut text =
        String::from("# ORS application options\n[orchestration]\nsome-option=1\n[persistence]\n");
    text.push_str(&format!(
        "redis-nodes = 127.0.0.1:{};127.0.0.1:{}\ncluster-name={CLUSTER_NAME}\npassword={PASSWORD}\n",
        good_port(),
        good_port() + 1
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
    // --config-file wins over ORS_REDIS_CONFIG.
    let over_env = ors(
        &[
            "sessions",
            "count",
            "--config-file",
            &file.to_string_lossy(),
        ],
        Some(&wrong),
    );
    for out in [&by_file, &by_flag, &over_env] {
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(has_total(&out.stdout, SESSIONS), "{}", out.stdout);
    }
    scenario.passed();
}

#[test]
fn sessions_count_and_list() {
    let Some(mut scenario) = Scenario::start("sessions_count_and_list") else {
        return;
    };
    let config = scenario.good().config();
    // count and list, with and without a prefix.
    let (_, env) = ors_json(&["sessions", "count"], &config, "sessions_count");
    let count = &env["result"];
    assert_eq!(n(&count["count"]), SESSIONS as f64);
    let per_master: f64 = a(&count["masters"]).iter().map(|m| n(&m["count"])).sum();
    assert_eq!(per_master, SESSIONS as f64);
    assert!(a(&count["masters"]).iter().all(|m| n(&m["count"]) > 0.0));
    let node7 = ors(&["sessions", "count", "--prefix", "node7-"], Some(&config));
    assert!(has_total(&node7.stdout, 250), "{}", node7.stdout);
    assert!(node7
        .stderr
        .contains("250 session(s) of cluster-name CLI_TEST with prefix 'node7-'"));
    let (_, env) = ors_json(
        &["sessions", "list", "--prefix", "glob*"],
        &config,
        "sessions_list",
    );
    let ids: Vec<&str> = a(&env["result"]["sessions"])
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default())
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
    let (_, env) = ors_json(&["sessions", "list", "-q"], &config, "sessions_list");
    let all: Vec<&str> = a(&env["result"]["sessions"])
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default())
        .collect();
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(all, sorted, "sorted, each id once");
    assert!(all.contains(&TEXT_ID) && all.contains(&"bin-1") && !all.contains(&"meta"));
    scenario.passed();
}

#[test]
fn sessions_get() {
    let Some(mut scenario) = Scenario::start("sessions_get") else {
        return;
    };
    let config = scenario.good().config();
    // get: raw bytes to a pipe, JSON with the value escaped or in base64, a
    // hexdump with --escaped, status 1 for a missing session.
    let raw = ors_bytes(&["sessions", "get", "bin-1"], &config);
    assert_eq!(raw.0, 0);
    assert_eq!(raw.1, BINARY_VALUE, "raw value on stdout, byte for byte");
    let (_, env) = ors_json(&["sessions", "get", "bin-1"], &config, "sessions_get");
    let bin = &env["result"];
    assert_eq!(bin["encoding"], "base64");
    assert_eq!(base64_decode(s(&bin["value"])), BINARY_VALUE);
    let (_, env) = ors_json(&["sessions", "get", TEXT_ID], &config, "sessions_get");
    let text = &env["result"];
    assert_eq!(text["encoding"], "utf-8");
    assert_eq!(text["value"], TEXT_VALUE);
    let ttl = n(&text["ttl_seconds"]);
    assert!((3500.0..=3600.0).contains(&ttl), "ttl {ttl}");
    assert_eq!(s(&text["key"]), format!("ORS:{CLUSTER_NAME}:{{{TEXT_ID}}}"));
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
    let (out, env) = ors_json(
        &["sessions", "get", "no-such-session"],
        &config,
        "sessions_get",
    );
    assert_eq!(out.code, 1);
    assert_eq!(env["result"]["found"], Value::Bool(false));
    scenario.passed();
}

#[test]
fn max_value_bytes() {
    let Some(mut scenario) = Scenario::start("max_value_bytes") else {
        return;
    };
    let config = scenario.good().config();
    // A value longer than max-value-bytes is refused before it is read, as
    // the library refuses it (the node's reply is not buffered whole).
    let small = format!("{config} max-value-bytes={}", BINARY_VALUE.len() - 1);
    let too_large = ors(&["sessions", "get", "bin-1"], Some(&small));
    assert_eq!(too_large.code, 1, "{}", too_large.stderr);
    assert!(
        too_large.stderr.contains("more than max-value-bytes"),
        "{}",
        too_large.stderr
    );
    assert!(too_large.stdout.is_empty(), "{}", too_large.stdout);
    let fits = format!("{config} max-value-bytes={}", BINARY_VALUE.len());
    assert_eq!(
        ors_bytes(&["sessions", "get", "bin-1"], &fits),
        (0, BINARY_VALUE.to_vec())
    );
    scenario.passed();
}

#[test]
fn terminal_progress_and_value() {
    let Some(mut scenario) = Scenario::start("terminal_progress_and_value") else {
        return;
    };
    let config = scenario.good().config();
    // On a terminal (through script(1), where it exists): a progress line
    // that is cleared, and the value shown rather than dumped raw; with
    // TERM=dumb no escape sequence at all.
    if have("script") {
        let out = on_a_terminal(
            &format!("'{BIN}' sessions count; '{BIN}' sessions get bin-1"),
            &config,
            "xterm",
        );
        assert!(out.contains("counting: master 1/3"), "{out:?}");
        assert!(out.contains("\x1b["), "{out:?}");
        assert!(out.contains("value (binary, hexdump):"), "{out:?}");
        assert!(out.contains("ttl "), "{out:?}");
        let dumb = on_a_terminal(&format!("'{BIN}' sessions count"), &config, "dumb");
        assert!(
            !dumb.contains('\x1b') && !dumb.contains("counting: master"),
            "{dumb:?}"
        );
        assert!(has_total(&dumb, SESSIONS), "{dumb:?}");
    }
    scenario.passed();
}

#[test]
fn pipes_closed_early() {
    let Some(mut scenario) = Scenario::start("pipes_closed_early") else {
        return;
    };
    let config = scenario.good().config();
    // Pipes: `| head -1` takes the first line and the command ends quietly
    // (0 or 141, no panic), also for a reader that is gone at once.
    for args in [
        "sessions list",
        "sessions count",
        "sessions get text-1",
        "sessions list --json",
        "sessions count --json",
        "sessions get text-1 --json",
        "doctor --json",
    ] {
        let out = Command::new("bash")
            .args([
                "-c",
                &format!("'{BIN}' {args} 2>\"$ERR\" | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}; cat \"$ERR\""),
            ])
            .env("ORS_REDIS_CONFIG", &config)
            .env("ERR", Path::new(TMP).join("cli-pipe.err"))
            .output()
            .expect("run bash");
        let text = String::from_utf8_lossy(&out.stdout);
        let code = text.lines().next().unwrap_or_default();
        assert!(
            code == "0" || code == "141",
            "{args} | head -1: exit {code}: {text}"
        );
        assert!(
            !text.contains("panicked") && !text.contains("Broken pipe"),
            "{args}: {text}"
        );
    }
    for args in [
        &["sessions", "list"][..],
        &["sessions", "count"][..],
        &["sessions", "get", "bin-1"][..],
        &["sessions", "get", "text-1", "--escaped"][..],
        &["sessions", "list", "--json"][..],
        &["doctor"][..],
        &["capacity", "--json"][..],
        &["--help"][..],
    ] {
        // 0 when the output fit into the pipe before the reader was gone.
        let (code, stderr) = to_a_closed_pipe(args, &config);
        assert!(matches!(code, Some(0 | 141)), "{args:?}: {code:?} {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    scenario.passed();
}

#[test]
fn good_cluster_capacity() {
    let Some(mut scenario) = Scenario::start("good_cluster_capacity") else {
        return;
    };
    let config = scenario.good().config();
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
    assert!(
        out.stdout.contains(" / 6 nodes)"),
        "the host's RAM shared by 6 nodes: {}",
        out.stdout
    );
    let (_, env) = ors_json(
        &["capacity", "--sessions", "30000", "--sample", "1000"],
        &config,
        "capacity",
    );
    let cap = &env["result"];
    let measured = &cap["measured"];
    assert_eq!(measured["method"], "memory_usage");
    assert_eq!(n(&measured["sessions"]), SESSIONS as f64);
    assert_eq!(n(&measured["sampled"]), SESSIONS as f64);
    // Mostly 1000-byte values: Redis adds a little under 200 bytes to each.
    let each = n(&measured["bytes_per_session"]);
    assert!((1000.0..1400.0).contains(&each), "bytes per session {each}");
    let masters = a(&cap["projection"]["masters"]);
    assert_eq!(masters.len(), 3);
    let planned: f64 = masters.iter().map(|m| n(&m["sessions_planned"])).sum();
    assert_eq!(planned, 30000.0);
    for m in masters {
        assert!(n(&m["projected_bytes"]) > n(&m["used_memory"]));
        // Six nodes on this host: each master's budget is a sixth of its RAM.
        assert_eq!(m["budget"], "host_memory_share");
        assert_eq!(n(&m["nodes_on_host"]), 6.0);
        assert_eq!(n(&m["budget_bytes"]), (n(&m["host_memory"]) / 6.0).floor());
    }
    scenario.passed();
}

/// The operator's read-only ACL user runs every read-only subcommand as
/// well as the default user; the library's user, which lacks what the
/// operator command needs, is told exactly what is missing.
#[test]
fn least_privilege() {
    let Some(mut scenario) = Scenario::start("least_privilege") else {
        return;
    };
    let good = scenario.good();
    let as_user = |user: &str, password: &str| {
        good.config_without_password() + &format!(" username={user} password={password}")
    };
    let operator = as_user(OPERATOR_USER, OPERATOR_PASSWORD);
    let out = ors(&["doctor"], Some(&operator));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(rows(&out.stdout, "permission").is_empty(), "{}", out.stdout);
    assert!(row(&out.stdout, "auth").contains(&format!("ACL user '{OPERATOR_USER}'")));
    assert_eq!(rows(&out.stdout, "latency").len(), 6);
    let (out, env) = ors_json(&["capacity", "--sample", "50"], &operator, "capacity");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(env["result"]["measured"]["method"], "memory_usage");
    assert_eq!(n(&env["result"]["measured"]["sampled"]), 50.0);
    for (args, command) in [
        (&["sessions", "list"][..], "sessions_list"),
        (&["sessions", "count"][..], "sessions_count"),
    ] {
        let (out, env) = ors_json(args, &operator, command);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert_eq!(n(&env["result"]["count"]), SESSIONS as f64);
    }
    let get = ors_bytes(&["sessions", "get", "bin-1"], &operator);
    assert_eq!((get.0, get.1.as_slice()), (0, BINARY_VALUE));
    // del and purge need the write rule.
    let out = ors(&["sessions", "del", "node7-sess-0001"], Some(&operator));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("permission denied: the ACL lacks +unlink"),
        "{}",
        out.stderr
    );
    let writer = as_user(OPERATOR_RW_USER, OPERATOR_PASSWORD);
    let out = ors(&["sessions", "del", "glob*id"], Some(&writer));
    assert_eq!(out.code, 0, "{}", out.stderr);
    good.redis_cli(&[
        "-c",
        "SET",
        &format!("ORS:{CLUSTER_NAME}:{{glob*id}}"),
        "g",
        "EX",
        "3600",
    ]);

    // The library's own user: refusals named as what they are.
    let library = as_user(LIBRARY_USER, LIBRARY_PASSWORD);
    let out = ors(&["doctor"], Some(&library));
    assert_eq!(out.code, 1);
    let denied = row(&out.stdout, "permission");
    assert!(
        denied.contains("permission denied: the ACL lacks +ping"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("not reachable"), "{}", out.stdout);
    let out = ors(&["capacity"], Some(&library));
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("MEMORY USAGE refused"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("no session to measure"));
    scenario.passed();
}

/// A master killed: doctor describes the failover and counts alike in the
/// header, the masters row and the JSON; `sessions get` on its slots rides
/// the failover out within op-timeout; the node is restarted afterwards.
#[test]
fn failover() {
    let Some(mut scenario) = Scenario::start("failover") else {
        return;
    };
    {
        let good = scenario.good();
        let config: &str = &good.config();
        let (_, env) = ors_json(
            &["sessions", "get", "node7-sess-0002"],
            config,
            "sessions_get",
        );
        let master = s(&env["result"]["node"]).to_string();
        let port: u16 = master
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        // Seeds that stay up: the other masters.
        let seeds: Vec<String> = (0..6)
            .map(|i| good_port() + i)
            .filter(|p| *p != port)
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let config = format!(
            "{} op-timeout=20000",
            config.replace(
                &format!("127.0.0.1:{};127.0.0.1:{}", good_port(), good_port() + 1),
                &seeds.join(";")
            )
        );
        let out = good.script(&["node-kill", &port.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _restart = Restart { good, port };

        let out = ors(&["doctor"], Some(&config));
        assert_eq!(out.code, 1, "{}", out.stdout);
        let row_text = row(&out.stdout, "failover");
        assert!(
            row_text.contains(&format!("master {master} down"))
                && row_text.contains("is taking over"),
            "{}",
            out.stdout
        );
        assert!(
            !rows(&out.stdout, "replicas")
                .iter()
                .any(|r| r.contains(&master)),
            "no 'no working replica' for the master being replaced: {}",
            out.stdout
        );
        let header_masters = out
            .stdout
            .split(", ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|t| t.parse::<usize>().ok())
            .expect("the header's count of masters");
        let (_, env) = ors_json(&["doctor"], &config, "doctor");
        let doc = &env["result"];
        assert_eq!(n(&doc["masters"]) as usize, header_masters);
        let masters_row = a(&doc["checks"])
            .iter()
            .find(|c| c["id"] == "masters")
            .map(|c| s(&c["detail"]).to_string())
            .unwrap_or_default();
        assert!(
            masters_row.contains(&format!("{header_masters} master")),
            "{masters_row} vs {header_masters}"
        );
        if header_masters == 2 {
            let failover_row = a(&doc["checks"]).iter().any(|c| c["id"] == "failover");
            assert!(failover_row, "{doc}");
        }

        // The library rides out a failover within op-timeout; so does the
        // command: a scan over the masters, and a session on the lost master.
        let started = Instant::now();
        let (out, env) = ors_json(&["sessions", "count"], &config, "sessions_count");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(n(&env["result"]["count"]), SESSIONS as f64);
        eprintln!(
            "ors_redis_cli: sessions count across a failover took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        let (out, env) = ors_json(
            &["sessions", "get", "node7-sess-0002"],
            &config,
            "sessions_get",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(env["result"]["found"], Value::Bool(true));
        assert_ne!(
            s(&env["result"]["node"]),
            master,
            "served by the promoted replica"
        );
        eprintln!(
            "ors_redis_cli: sessions get across a failover took {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    scenario.passed();
}

#[test]
fn del_and_purge() {
    let Some(mut scenario) = Scenario::start("del_and_purge") else {
        return;
    };
    let config = scenario.good().config();
    scenario.sessions_change();
    // del: UNLINK, then nothing left to delete.
    let out = ors(&["sessions", "del", "node8-sess-0001"], Some(&config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out
        .stdout
        .contains("deleted session 'node8-sess-0001' (UNLINK on 127.0.0.1:"));
    let (again, env) = ors_json(
        &["sessions", "del", "node8-sess-0001"],
        &config,
        "sessions_del",
    );
    assert_eq!(again.code, 1);
    assert_eq!(env["result"]["deleted"], Value::Bool(false));
    let (_, env) = ors_json(
        &["sessions", "count", "--prefix", "node8-"],
        &config,
        "sessions_count",
    );
    assert_eq!(n(&env["result"]["count"]), 49.0);

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
    let (refused, env) = ors_json(&["sessions", "purge"], &config, "sessions_purge");
    assert_eq!(refused.code, 2);
    assert_eq!(n(&env["result"]["would_delete"]), keys as f64);
    let (_, env) = ors_json(&["sessions", "count"], &config, "sessions_count");
    assert_eq!(n(&env["result"]["count"]), (SESSIONS - 1) as f64);
    let (purged, env) = ors_json(&["sessions", "purge", "--yes"], &config, "sessions_purge");
    assert_eq!(purged.code, 0, "{}", purged.stderr);
    assert_eq!(n(&env["result"]["deleted"]), keys as f64);
    assert_eq!(env["result"]["verified"], Value::Bool(true));
    let (_, env) = ors_json(&["sessions", "count"], &config, "sessions_count");
    assert_eq!(n(&env["result"]["count"]), 0.0);
    let other = config.replace(CLUSTER_NAME, "OTHER_NAME");
    let (_, env) = ors_json(&["sessions", "list"], &other, "sessions_list");
    assert_eq!(n(&env["result"]["count"]), 1.0);
    assert_eq!(env["result"]["sessions"][0]["id"], "kept");
    scenario.passed();
}

/// `sessions export` from the good cluster (as the read-only operator) and
/// `sessions import` into the weak one: every session, byte for byte, with
/// its TTL; an existing session kept without --overwrite and replaced with
/// it; expired records skipped; bad and cut streams named; the ACL rules.
#[test]
fn export_import() {
    let Some(mut scenario) = Scenario::start("export_import") else {
        return;
    };
    let (good, weak) = scenario.good_and_weak();
    const NAME: &str = "MOVE";
    const LOAD: usize = 20_000;
    let operator = good.config_without_password().replace(CLUSTER_NAME, NAME)
        + &format!(" username={OPERATOR_USER} password={OPERATOR_PASSWORD}");
    let source = good.config().replace(CLUSTER_NAME, NAME);
    let target = weak.config().replace(CLUSTER_NAME, NAME);

    // Ids with every byte a session id may hold (one of them not UTF-8),
    // binary and empty values, TTLs from an hour to a day.
    let every_ascii: Vec<u8> = (0x20..0x7f).filter(|b| *b != b'{' && *b != b'}').collect();
    let mut sessions: Vec<(Vec<u8>, Vec<u8>, u32)> = vec![
        (every_ascii, b"all ascii".to_vec(), 3600),
        ((0x80..=0xff).collect(), BINARY_VALUE.to_vec(), 7200),
        (b"empty".to_vec(), Vec::new(), 3600),
    ];
    for i in 0..LOAD {
        let len = i * 37 % 1000;
        let value: Vec<u8> = (0..len).map(|j| (i * 31 + j * 7) as u8).collect();
        sessions.push((
            format!("m-{i}").into_bytes(),
            value,
            3600 + (i % 86_400) as u32,
        ));
    }
    let started = Instant::now();
    // Written compressed: the export still holds what ORS gave.
    put_sessions(&format!("{source} compression=zstd"), &sessions);
    eprintln!(
        "ors_redis_cli: {} sessions written through the library in {:.1} s",
        sessions.len(),
        started.elapsed().as_secs_f64()
    );

    let file = Path::new(TMP).join("cli-export.jsonl");
    let file_arg = file.to_string_lossy().into_owned();
    let started = Instant::now();
    let (out, env) = ors_json(
        &["sessions", "export", "--file", &file_arg],
        &operator,
        "sessions_export",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let exported_in = started.elapsed();
    assert_eq!(n(&env["result"]["sessions"]), sessions.len() as f64);
    let stream = std::fs::read(&file).expect("read the export");
    let exported = parse_stream(&stream, NAME);
    for (id, value, ttl) in &sessions {
        let (got, expires) = exported.get(id).expect("every session exported");
        assert_eq!(got, value, "{}", String::from_utf8_lossy(id));
        let left = expires - now_ms();
        assert!(
            left <= i64::from(*ttl) * 1000 && left > i64::from(*ttl) * 1000 - 120_000,
            "ttl {ttl} s, {left} ms left"
        );
    }

    let started = Instant::now();
    let (out, env) = ors_json(
        &["sessions", "import", "--file", &file_arg],
        &target,
        "sessions_import",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let imported_in = started.elapsed();
    let result = &env["result"];
    let total = sessions.len() as f64;
    assert_eq!(n(&result["read"]), total);
    assert_eq!(n(&result["imported"]), total, "{env}");
    for field in ["kept_existing", "expired", "failed"] {
        assert_eq!(n(&result[field]), 0.0, "{field}: {env}");
    }
    assert_eq!(result["complete"], Value::Bool(true));
    assert_eq!(result["source_cluster_name"], NAME);
    eprintln!(
        "ors_redis_cli: {} sessions exported in {:.2} s, imported in {:.2} s",
        sessions.len(),
        exported_in.as_secs_f64(),
        imported_in.as_secs_f64()
    );

    // What the target holds is what the source held: values byte for
    // byte, expiry within a second.
    let (code, back) = ors_bytes(&["sessions", "export", "-q"], &target);
    assert_eq!(code, 0);
    let imported = parse_stream(&back, NAME);
    assert_eq!(imported.len(), exported.len());
    for (id, (value, expires)) in &exported {
        let (got, got_expires) = imported.get(id).expect("every session imported");
        assert_eq!(got, value, "{}", String::from_utf8_lossy(id));
        assert!(
            (got_expires - expires).abs() < 1000,
            "{}: expires {got_expires} vs {expires}",
            String::from_utf8_lossy(id)
        );
    }
    assert_eq!(
        ors_bytes(&["sessions", "get", "empty"], &target),
        (0, Vec::new())
    );
    // The import writes per the target's config: plain here, compressed
    // below; `sessions get` returns the given bytes either way.
    let strlen = |id: &str| {
        let key = format!("ORS:{NAME}:{{{id}}}");
        cli_out(weak_port(), &["-c", "STRLEN", &key])
            .trim()
            .parse::<usize>()
            .unwrap_or(0)
    };
    assert_eq!(sessions[13].0, b"m-10");
    assert_eq!(
        strlen("m-10"),
        370,
        "imported with compression=off: as given"
    );

    // Imports the whole export with --overwrite: every session written.
    let overwrite_all = |config: &str| {
        let out = ors(
            &["sessions", "import", "--overwrite", "--file", &file_arg],
            Some(config),
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let line = format!("imported       {}", sessions.len());
        assert!(out.stdout.contains(&line), "{}", out.stdout);
    };

    // A session written since is kept; --overwrite replaces it.
    let key = format!("ORS:{NAME}:{{m-1}}");
    cli_out(weak_port(), &["-c", "SET", &key, "newer", "EX", "600"]);
    let (out, env) = ors_json(
        &["sessions", "import", "--file", &file_arg],
        &target,
        "sessions_import",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(n(&env["result"]["kept_existing"]), total);
    assert_eq!(n(&env["result"]["imported"]), 0.0);
    assert_eq!(cli_out(weak_port(), &["-c", "GET", &key]).trim(), "newer");
    overwrite_all(&format!("{target} compression=lz4"));
    assert_eq!(
        ors_bytes(&["sessions", "get", "m-1"], &target).1,
        sessions[4].1,
        "m-1 replaced by the exported value"
    );
    assert!(
        strlen("m-10") < 370,
        "imported with compression=lz4: compressed"
    );
    assert_eq!(
        ors_bytes(&["sessions", "get", "m-10"], &target).1,
        sessions[13].1,
        "and read back as given"
    );

    // A stream written by hand, exported ten minutes ago: the session with
    // one second left has expired, the others keep the rest of their TTL.
    let header = |name: &str, at: i64| {
        format!(
            r#"{{"format":"ors-redis-sessions","version":1,"cluster_name":"{name}","exported_at_ms":{at}}}"#
        )
    };
    let ago = now_ms() - 600_000;
    let lines = [
        header(NAME, ago),
        r#"{"id":"gone","value":"eA==","pttl_ms":1000}"#.to_string(),
        r#"{"id":"hour","value":"eA==","pttl_ms":3600000}"#.to_string(),
        r#"{"id_b64":"bm8tdHRs/w==","value":"","pttl_ms":-1}"#.to_string(),
        r#"{"end":true,"records":3}"#.to_string(),
    ];
    let crafted = Path::new(TMP).join("cli-crafted.jsonl");
    let crafted_arg = crafted.to_string_lossy().into_owned();
    std::fs::write(&crafted, lines.join("\n") + "\n").expect("write the stream");
    let (out, env) = ors_json(
        &["sessions", "import", "--file", &crafted_arg],
        &target,
        "sessions_import",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        (n(&env["result"]["expired"]), n(&env["result"]["imported"])),
        (1.0, 2.0)
    );
    let pttl: i64 = cli_out(
        weak_port(),
        &["-c", "PTTL", &format!("ORS:{NAME}:{{hour}}")],
    )
    .trim()
    .parse()
    .expect("a PTTL");
    assert!((2_990_000..=3_000_000).contains(&pttl), "pttl {pttl}");
    assert_eq!(
        cli_out(
            weak_port(),
            &["-c", "EXISTS", &format!("ORS:{NAME}:{{gone}}")]
        )
        .trim(),
        "0"
    );
    let no_ttl = Command::new("redis-cli")
        .args(["-c", "-p", &weak_port().to_string(), "PTTL"])
        .arg(std::ffi::OsStr::from_bytes(
            &[&format!("ORS:{NAME}:{{no-ttl").into_bytes()[..], b"\xff}"].concat(),
        ))
        .output()
        .expect("run redis-cli");
    assert_eq!(String::from_utf8_lossy(&no_ttl.stdout).trim(), "-1");

    // A bad line: what came before it is written, the error names it.
    let mut bad = lines.to_vec();
    bad[1] = r#"{"id":"before","value":"","pttl_ms":6000000}"#.to_string();
    bad[3] = r#"{"id":"a{b","value":"","pttl_ms":60000}"#.to_string();
    std::fs::write(&crafted, bad.join("\n") + "\n").expect("write the stream");
    let (out, env) = ors_json(
        &["sessions", "import", "--overwrite", "--file", &crafted_arg],
        &target,
        "sessions_import",
    );
    assert_eq!(out.code, 1);
    assert!(
        s(&env["result"]["error"]).contains("line 4: session id has a brace"),
        "{env}"
    );
    assert_eq!(n(&env["result"]["imported"]), 2.0);
    assert_eq!(env["result"]["complete"], Value::Bool(false));
    // Cut short: no end line.
    std::fs::write(&crafted, lines[..3].join("\n") + "\n").expect("write the stream");
    let out = ors(
        &["sessions", "import", "--file", &crafted_arg],
        Some(&target),
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("line 4: the stream ends without its end line after 2 record(s)"),
        "{}",
        out.stderr
    );
    // Not a stream, another cluster name: nothing written, status 2.
    std::fs::write(&crafted, "hello\n").expect("write the file");
    let (out, env) = ors_json(
        &["sessions", "import", "--file", &crafted_arg],
        &target,
        "sessions_import",
    );
    assert_eq!(out.code, 2);
    assert!(s(&env["error"]["message"]).contains("line 1: not an ors-redis-sessions header"));
    let other = weak.config().replace(CLUSTER_NAME, "PIPED");
    let out = ors(&["sessions", "import", "--file", &file_arg], Some(&other));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("holds the sessions of cluster-name MOVE, the config says PIPED"),
        "{}",
        out.stderr
    );

    // The documented pipe, with --rename: one config on each side.
    let piped = Command::new("bash")
        .args([
            "-c",
            &format!(
                "'{BIN}' -q --config \"$FROM\" sessions export --prefix m-1 | \
                 '{BIN}' --config \"$TO\" sessions import --rename --json"
            ),
        ])
        .env_remove("ORS_REDIS_CONFIG")
        .env("FROM", &source)
        .env("TO", &other)
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let env: Value = serde_json::from_slice(&piped.stdout).expect("the import's JSON");
    assert_eq!(piped.status.code(), Some(0), "{env}");
    // m-1, m-10..m-19, m-100..m-199, m-1000..m-1999, m-10000..m-19999.
    assert_eq!(n(&env["result"]["imported"]), 11_111.0, "{env}");
    assert_eq!(env["result"]["cluster_name"], "PIPED");

    // The ACL: import needs +set, which only the rw rule has.
    let out = ors(
        &["sessions", "import", "--file", &file_arg],
        Some(&operator),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("permission denied: the ACL lacks +set"),
        "{}",
        out.stderr
    );
    let writer = operator.replace(
        &format!("username={OPERATOR_USER} "),
        &format!("username={OPERATOR_RW_USER} "),
    );
    overwrite_all(&writer);
    scenario.passed();
}

/// Restarts a killed node and waits until the cluster is healthy again.
struct Restart<'a> {
    good: &'a GoodCluster,
    port: u16,
}

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        let out = self.good.script(&["node-start", &self.port.to_string()]);
        if !out.status.success() {
            eprintln!("node-start: {}", String::from_utf8_lossy(&out.stderr));
        }
        let out = self.good.script(&["wait-healthy", "60"]);
        if !out.status.success() {
            eprintln!("wait-healthy: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

// ------------------------------------------------------------ the sessions

const SESSIONS: usize = 250 + 50 + 3;
const TEXT_ID: &str = "text-1";
const TEXT_VALUE: &str = "line 1 \"quoted\" \\ back\nline 2\ttab é \u{1}";
const BINARY_VALUE: &[u8] = b"\x00\x01bin\xffary\x80";

#[test]
fn dictionary_train_and_use() {
    let Some(mut scenario) = Scenario::start("dictionary_train_and_use") else {
        return;
    };
    const NAME: &str = "DICT";
    let weak = scenario.weak();
    let config = weak.config().replace(CLUSTER_NAME, NAME);
    // Session-like JSON: a shared vocabulary, ids and figures that vary.
    let session = |i: usize| -> Vec<u8> {
        format!(
            "{{\"sid\":\"{i:08x}-77a1\",\"state\":\"routing\",\"queue\":\"VQ_Sales_{}\",\
             \"events\":[{{\"name\":\"interaction.added\",\"at\":{}}},{{\"name\":\"target.selected\",\
             \"agent\":\"Agent_{}@StatServer\"}}],\"attached\":{{\"Language\":\"en-US\",\
             \"Segment\":\"gold\",\"CallerId\":\"+1555{:07}\"}}}}",
            i % 7,
            1_700_000_000 + i * 37,
            i % 50,
            i * 7919 % 10_000_000
        )
        .into_bytes()
    };
    let plain: Vec<(Vec<u8>, Vec<u8>, u32)> = (0..300)
        .map(|i| (format!("plain-{i}").into_bytes(), session(i), 3600))
        .collect();
    put_sessions(&config, &plain);

    // Too few sessions: a clear refusal, status 1.
    let few = ors(
        &["dictionary", "train"],
        Some(&config.replace(NAME, "EMPTY_NAME")),
    );
    assert_eq!(few.code, 1, "{}", few.stderr);
    assert!(
        few.stderr.contains("training needs at least"),
        "{}",
        few.stderr
    );

    // Trained, measured on sessions it did not see, stored with a TTL.
    let (out, doc) = ors_json(
        &["dictionary", "train", "--sample", "300", "--bytes", "8K"],
        &config,
        "dictionary_train",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = &doc["result"];
    let id = s(&r["id"]).to_string();
    assert_eq!(id.len(), 8, "{doc}");
    assert_eq!(s(&r["key"]), format!("ORS:{NAME}:dict:{id}"));
    assert!(n(&r["dictionary_bytes"]) <= 8192.0, "{doc}");
    assert_eq!(n(&r["trained_on"]) + n(&r["measured_on"]), 300.0, "{doc}");
    let small = &r["small"];
    assert!(
        n(&small["zstd_dictionary_bytes"]) < 0.7 * n(&small["zstd_bytes"]),
        "the dictionary saves far more on small sessions: {doc}"
    );
    let key = format!("ORS:{NAME}:dict:{id}");
    let pttl_days = || {
        let ms: f64 = cli_out(weak_port(), &["-c", "PTTL", &key])
            .trim()
            .parse()
            .unwrap_or(0.0);
        ms / 86_400_000.0
    };
    assert!(pttl_days() > 89.0, "the stored dictionary's TTL");
    let dry = ors(
        &["dictionary", "train", "--sample", "300", "--dry-run"],
        Some(&config),
    );
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("not stored"), "{}", dry.stdout);

    // The library writes with it; every byte as given comes back.
    cli_out(weak_port(), &["-c", "EXPIRE", &key, "100"]);
    assert_eq!(
        s(&r["config"]),
        format!("compression=zstd compression-dictionary={id} compression-min-bytes=64")
    );
    let writer = format!("{config} {}", s(&r["config"]));
    let written: Vec<(Vec<u8>, Vec<u8>, u32)> = (1000..1010)
        .map(|i| (format!("dict-{i}").into_bytes(), session(i), 3600))
        .collect();
    put_sessions(&writer, &written);
    assert!(pttl_days() > 89.0, "init stored it again");
    let stored_key = format!("ORS:{NAME}:{{dict-1003}}");
    let stored = Command::new("redis-cli")
        .args([
            "-p",
            &weak_port().to_string(),
            "-c",
            "--raw",
            "GET",
            &stored_key,
        ])
        .output()
        .expect("redis-cli")
        .stdout;
    let id_bytes = u32::from_str_radix(&id, 16).unwrap().to_le_bytes();
    assert_eq!(&stored[..8], b"\x00\x89ORSz\r\n", "an envelope");
    assert_eq!(
        (stored[13], &stored[18..22]),
        (3, &id_bytes[..]),
        "it names the dictionary"
    );
    assert!(
        stored.len() < session(1003).len() / 2,
        "{} bytes stored",
        stored.len()
    );
    // Another process (this command) finds the dictionary by the id.
    let got = ors_bytes(&["sessions", "get", "dict-1003"], &config);
    assert_eq!(got, (0, session(1003)));
    // The bulk read too: an export holds what ORS gave.
    let file = Path::new(TMP).join("dict-export.jsonl");
    let export = ors(
        &[
            "sessions",
            "export",
            "--prefix",
            "dict-",
            "--file",
            file.to_str().unwrap(),
        ],
        Some(&config),
    );
    assert_eq!(export.code, 0, "{}", export.stderr);
    let exported = parse_stream(&std::fs::read(&file).unwrap(), NAME);
    assert_eq!(exported.len(), 10);
    for (id, value, _) in &written {
        assert_eq!(&exported[id].0, value);
    }

    // doctor names the dictionary the sampled values use, and whether it
    // is there.
    let compressed_values = |config: &str| {
        let (_, doc) = ors_json(&["doctor"], config, "doctor");
        a(&doc["result"]["checks"])
            .iter()
            .find(|c| c["id"] == "compressed_values")
            .map(|c| (s(&c["status"]).to_string(), s(&c["detail"]).to_string()))
            .expect("a compressed_values row")
    };
    let (status, detail) = compressed_values(&config);
    assert_eq!(status, "pass", "{detail}");
    assert!(
        detail.contains(&format!("with dictionary {id} (10) (present)")),
        "{detail}"
    );

    // The dictionary gone: doctor fails, a reader says which, and the
    // writer's next start stores it again.
    cli_out(weak_port(), &["-c", "DEL", &key]);
    let (status, detail) = compressed_values(&config);
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("which is not in the cluster"), "{detail}");
    let lost = ors(&["sessions", "get", "dict-1003"], Some(&config));
    assert_eq!(lost.code, 1);
    assert!(
        lost.stderr
            .contains(&format!("dictionary {id}, which is not in the cluster")),
        "{}",
        lost.stderr
    );
    put_sessions(&writer, &written[..1]);
    assert_eq!(
        ors_bytes(&["sessions", "get", "dict-1003"], &config),
        (0, session(1003))
    );

    let purge = ors(&["sessions", "purge", "--yes"], Some(&config));
    assert_eq!(purge.code, 0, "{}", purge.stderr);
    scenario.passed();
}

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

/// Writes `sessions` (id, value, ttl in seconds) through the library's C
/// API, as ORS would.
fn put_sessions(config: &str, sessions: &[(Vec<u8>, Vec<u8>, u32)]) {
    use ors_redis::ffi::{ors_redis_init, ors_redis_shutdown, ors_session_put};
    let c_config = CString::new(config).expect("no NUL in the config");
    assert_eq!(ors_redis_init(c_config.as_ptr()), 0, "ors_redis_init");
    for (id, value, ttl) in sessions {
        let c_id = CString::new(id.clone()).expect("no NUL in ids");
        assert_eq!(
            ors_session_put(c_id.as_ptr(), value.as_ptr(), value.len(), *ttl),
            0
        );
    }
    assert_eq!(ors_redis_shutdown(), 0);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A session stream (docs/operators.md), read here on its own: id ->
/// (value, when it expires in ms since the epoch, or -1).
fn parse_stream(bytes: &[u8], cluster_name: &str) -> BTreeMap<Vec<u8>, (Vec<u8>, i64)> {
    let text = std::str::from_utf8(bytes).expect("a stream is UTF-8");
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().expect("a header")).expect("JSON");
    assert_eq!(header["format"], "ors-redis-sessions");
    assert_eq!(header["version"], 1);
    assert_eq!(header["cluster_name"], cluster_name);
    let at = header["exported_at_ms"].as_i64().expect("exported_at_ms");
    let mut out = BTreeMap::new();
    let mut end = None;
    for line in lines {
        let v: Value = serde_json::from_str(line).expect("JSON");
        if v["end"] == Value::Bool(true) {
            end = v["records"].as_u64();
            continue;
        }
        let id = match v["id"].as_str() {
            Some(id) => id.as_bytes().to_vec(),
            None => base64_decode(s(&v["id_b64"])),
        };
        let pttl = v["pttl_ms"].as_i64().expect("pttl_ms");
        let expires = if pttl == -1 { -1 } else { at + pttl };
        assert!(
            out.insert(id, (base64_decode(s(&v["value"])), expires))
                .is_none(),
            "each id once"
        );
    }
    assert_eq!(
        end,
        Some(out.len() as u64),
        "the end line counts the records"
    );
    out
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

/// Runs `args --json`, checks the envelope and every field against the
/// reference in docs/operators.md, and returns the document.
fn ors_json(args: &[&str], config: &str, name: &str) -> (Run, Value) {
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let out = ors(&with_json, Some(config));
    let doc: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {:?} {}", out.stdout, out.stderr));
    assert_eq!(doc["schema_version"], 1, "{doc}");
    assert_eq!(doc["command"], name, "{doc}");
    assert_eq!(
        doc["ok"].as_bool(),
        Some(out.code == 0),
        "ok agrees with the exit status: {doc}"
    );
    validate(name, &doc);
    (out, doc)
}

/// Starts the command with stdout a pipe whose reader is already gone.
fn to_a_closed_pipe(args: &[&str], config: &str) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("ORS_REDIS_CONFIG", config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ors-redis");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for ors-redis");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The table rows of a check (`<id> <node> <STATUS> <detail>`).
fn rows(stdout: &str, check: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{check} ")))
        .map(str::to_string)
        .collect()
}

fn row(stdout: &str, check: &str) -> String {
    rows(stdout, check)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {check} row in\n{stdout}"))
}

/// Whether a count's table ends with the line `total  N` (its columns are
/// as wide as the longest node address, so the spaces vary with the ports).
fn has_total(text: &str, total: usize) -> bool {
    let total = total.to_string();
    text.lines()
        .any(|l| l.split_whitespace().eq(["total", total.as_str()]))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn n(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn a(v: &Value) -> &[Value] {
    v.as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("not an array: {v}"))
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

/// Runs a shell command line under script(1), so that it has a terminal.
fn on_a_terminal(line: &str, config: &str, term: &str) -> String {
    let out = Command::new("script")
        .args(["-qec", line, "/dev/null"])
        .env("ORS_REDIS_CONFIG", config)
        .env("TERM", term)
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

// ------------------------------------------- the JSON field reference

/// Commands whose output was checked against the reference.
static VALIDATED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// docs/operators.md's field reference: per command (`envelope` for the
/// fields of every command), each field's path and the JSON types it may
/// have (`absent`: it may be left out).
type Reference = BTreeMap<String, Vec<(String, Vec<String>)>>;

fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let text = std::fs::read_to_string(Path::new(REPO).join("docs/operators.md"))
            .expect("read docs/operators.md");
        let section = text
            .split("\n## JSON field reference")
            .nth(1)
            .expect("a '## JSON field reference' section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let mut out = Reference::new();
        let mut current: Option<String> = None;
        for line in section.lines() {
            if let Some(heading) = line.strip_prefix("### ") {
                current = heading.split('`').nth(1).map(str::to_string);
                continue;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (Some(name), Some(path), Some(types)) =
                (current.as_ref(), cells.get(1), cells.get(2))
            else {
                continue;
            };
            let Some(path) = path.strip_prefix('`').and_then(|p| p.strip_suffix('`')) else {
                continue;
            };
            let types = types.split(',').map(|t| t.trim().to_string()).collect();
            out.entry(name.clone())
                .or_default()
                .push((path.to_string(), types));
        }
        assert!(out.contains_key("envelope") && out.len() > 1, "{out:?}");
        out
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(x) if x.is_u64() || x.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk<'v>(v: &'v Value, path: &str, out: &mut Vec<(String, &'v Value)>) {
    match v {
        Value::Object(fields) => {
            for (key, value) in fields {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                out.push((p.clone(), value));
                walk(value, &p, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                let p = format!("{path}[]");
                out.push((p.clone(), item));
                walk(item, &p, out);
            }
        }
        _ => {}
    }
}

/// Every field of `doc` is in the reference with one of its types, and
/// every field the reference does not mark `absent` is there.
fn validate(name: &str, doc: &Value) {
    let reference = reference();
    let fields: Vec<&(String, Vec<String>)> = reference["envelope"]
        .iter()
        .chain(reference.get(name).into_iter().flatten())
        .collect();
    assert!(reference.contains_key(name), "no reference for {name}");
    let mut seen = Vec::new();
    walk(doc, "", &mut seen);
    for (path, value) in &seen {
        let Some((_, types)) = fields.iter().find(|(p, _)| p == path) else {
            panic!("{name}: field {path} is not in docs/operators.md's reference: {doc}");
        };
        let t = json_type(value);
        assert!(
            types
                .iter()
                .any(|want| want == t || (want == "number" && t == "integer")),
            "{name}: {path} is {t}, the reference says {types:?}"
        );
    }
    let present: BTreeSet<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
    for (path, types) in &fields {
        // Optional fields, and the elements of an array (which may be empty).
        if types.iter().any(|t| t == "absent") || path.ends_with("[]") {
            continue;
        }
        let parent = path.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
        let parent_there =
            parent.is_empty() || seen.iter().any(|(p, v)| p == parent && v.is_object());
        assert!(
            !parent_there || present.contains(path.as_str()),
            "{name}: {path} is missing: {doc}"
        );
    }
    if let Ok(mut v) = VALIDATED.lock() {
        v.insert(name.to_string());
    }
}

// ------------------------------------------------------------ the servers

/// A line `ACL SETUSER <user> ...` of a doc, as a redis.conf `user` line
/// with `password` for its `>PASSWORD`.
fn acl_rule(doc: &str, user: &str, password: &str) -> String {
    let text = std::fs::read_to_string(Path::new(REPO).join(doc)).expect("read the doc");
    let prefix = format!("ACL SETUSER {user} ");
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no '{prefix}...' in {doc}"));
    format!("user {user} {}", &line[prefix.len()..]).replace(">PASSWORD", &format!(">{password}"))
}

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
        let users = [
            acl_rule("docs/operators.md", OPERATOR_USER, OPERATOR_PASSWORD),
            acl_rule("docs/operators.md", OPERATOR_RW_USER, OPERATOR_PASSWORD),
            acl_rule("docs/security.md", LIBRARY_USER, LIBRARY_PASSWORD),
        ];
        std::fs::write(
            &extra_conf,
            format!(
                "requirepass {PASSWORD}\nmasterauth {PASSWORD}\n{}\n",
                users.join("\n")
            ),
        )
        .expect("write the extra config");
        let cluster = GoodCluster { dir, extra_conf };
        let out = cluster.script(&["start"]);
        assert!(
            out.status.success(),
            "cluster.sh start failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn script(&self, args: &[&str]) -> Output {
        Command::new(Path::new(REPO).join("c_tests/cluster.sh"))
            .args(args)
            .env("ORS_CLUSTER_PORT", good_port().to_string())
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

    fn config_without_password(&self) -> String {
        format!(
            "redis-nodes=127.0.0.1:{};127.0.0.1:{} cluster-name={CLUSTER_NAME}",
            good_port(),
            good_port() + 1
        )
    }

    fn config(&self) -> String {
        format!("{} password={PASSWORD}", self.config_without_password())
    }

    fn redis_cli(&self, args: &[&str]) {
        let status = Command::new("redis-cli")
            .args([
                "-p",
                &good_port().to_string(),
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
        let out = self.script(&["stop"]);
        if !out.status.success() {
            eprintln!(
                "cluster.sh stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A standalone server and a Sentinel (watching it): children, stopped by
/// pid on drop.
struct LoneServers {
    children: Vec<Child>,
}

impl LoneServers {
    fn start() -> Self {
        let dir = Path::new(TMP).join("cli-lone-servers");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the dir");
        let dir_text = dir.to_string_lossy().into_owned();
        let mut servers = LoneServers {
            children: Vec::new(),
        };
        let standalone = Command::new("redis-server")
            .args([
                "--port",
                &standalone_port().to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--save", "", "--appendonly", "no", "--dir", &dir_text])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        servers.children.push(standalone);
        // A Sentinel needs a config file it can rewrite.
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {}\nbind 127.0.0.1\ndir {dir_text}\nsentinel monitor lone 127.0.0.1 {} 1\n",
                sentinel_port(),
                standalone_port()
            ),
        )
        .expect("write sentinel.conf");
        let sentinel = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server --sentinel");
        servers.children.push(sentinel);
        for port in [standalone_port(), sentinel_port()] {
            wait_until(
                Duration::from_secs(15),
                &format!("{port} answers PING"),
                || cli_out(port, &["PING"]).trim() == "PONG",
            );
        }
        servers
    }
}

impl Drop for LoneServers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
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
        weak_port()..weak_port() + WEAK_NODES
    }

    fn config(&self) -> String {
        format!(
            "redis-nodes=127.0.0.1:{} cluster-name={CLUSTER_NAME}",
            weak_port()
        )
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

/// ORS's application config as Genesys documents it for Redis (issue 28):
/// `[persistence]` with `type=redis` reads, a near miss of a key is named
/// with the key it meant, and `doctor --config-file` checks ORS's own
/// rules (`type=redis`, `sessionid-with-nodeid=true` in `[orchestration]`,
/// a CA source with TLS) as rows, before and whatever the cluster says
/// (nothing listens on the dead port here).
#[test]
fn ors_application_config_file() {
    let dir = Path::new(TMP).join("ors-application-config");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let seed = format!("127.0.0.1:{}", dead_port());
    let good = write(
        "good.cfg",
        &format!(
            "[orchestration]\nsessionid-with-nodeid=true\n\n[persistence]\ntype=redis\n\
             redis-nodes={seed}\ncluster-name=ORS_EU\nredis-connect-timeout=200\n"
        ),
    );
    let out = ors(&["doctor", "--config-file", &good], None);
    assert!(
        !out.stderr.contains("unknown key"),
        "type=redis is read: {}",
        out.stderr
    );
    assert_eq!(out.code, 1, "the cluster is not there: {}", out.stdout);
    let option_rows = rows(&out.stdout, "ors_option");
    assert_eq!(option_rows.len(), 3, "{}", out.stdout);
    assert!(
        option_rows.iter().all(|r| r.contains("PASS")),
        "{}",
        out.stdout
    );

    let broken = write(
        "broken.cfg",
        &format!(
            "[orchestration]\nsessionid-with-nodeid=false\n[persistence]\n\
             redis-nodes={seed}\ncluster-name=ORS_EU\nredis-connect-timeout=200\n\
             tls-enabled=true\n"
        ),
    );
    let out = ors(&["doctor", "--config-file", &broken], None);
    let failed: Vec<String> = rows(&out.stdout, "ors_option")
        .into_iter()
        .filter(|r| r.contains("FAIL"))
        .collect();
    assert_eq!(failed.len(), 3, "{}", out.stdout);
    assert!(failed.iter().any(|r| r.contains("no type=redis")));
    assert!(failed
        .iter()
        .any(|r| r.contains("sessionid-with-nodeid is 'false'")));
    assert!(failed
        .iter()
        .any(|r| r.contains("tls-cacert or tls-cacertdir")));

    let other = write(
        "other.cfg",
        &format!("[persistence]\ntype=couchbase\nredis-nodes={seed}\ncluster-name=T\n"),
    );
    let out = ors(&["doctor", "--config-file", &other], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("type 'couchbase'"), "{}", out.stderr);

    let typo = write(
        "typo.cfg",
        &format!("[persistence]\ntype=redis\nredis-nodes={seed}\nclustr-name=T\n"),
    );
    let out = ors(&["doctor", "--config-file", &typo], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("did you mean 'cluster-name'?"),
        "{}",
        out.stderr
    );
}
