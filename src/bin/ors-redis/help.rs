//! The `--help` texts, one per command and subcommand.

pub const TOP: &str = "\
ors-redis - the operator command of ors-redis, session persistence for
Genesys Orchestration Server (ORS) on a Redis Cluster

Usage: ors-redis [options] <command> [arguments]

Commands:
  doctor              check the live cluster against what ORS recommends
  capacity            size the cluster: ORS's rules and a measured projection
  sessions list|count|get|del|purge
                      inspect and clean up one ORS cluster's sessions
  help [command]      this text, or a command's

Options (every command):
  -c, --config 'STRING'   the library's config string, as ORS passes it:
                          'redis-nodes=10.0.0.1:7000;10.0.0.2:7000 cluster-name=ORS_EU'
  -f, --config-file FILE  ORS's persistence section as key=value lines
                          ('#' comments; in a file with [sections], only
                          [persistence] is read)
                          Without either: the ORS_REDIS_CONFIG environment variable.
      --json              JSON on stdout instead of tables
  -q, --quiet             no progress indicator or notes on stderr
  -h, --help              help (after a command: that command's)
  -V, --version           the version

Exit status: 0 success; 1 a check failed, or the operation did not succeed;
2 usage or config error.
";

pub const DOCTOR: &str = "\
Usage: ors-redis doctor [options]

Checks the live cluster against what ORS recommends and prints one line per
check with pass, warn or fail and the reason:

  node              every node reachable and not marked failed by the cluster
  cluster state     cluster_state:ok on every node, all 16384 slots served
  masters           at least 3 masters
  replicas          each master has a working replica on another host (on the
                    same host: warn, as on a local test cluster)
  aof               appendonly yes on every node, replicas too (appendfsync
                    from CONFIG GET; appendfsync no: warn)
  maxmemory-policy  noeviction on every node (every session key has a TTL, so
                    even volatile-* policies can evict live sessions)
  memory            used_memory below 75% of maxmemory (else warn; 90%: fail)
  version           the server versions: one everywhere, 4.0 or newer (UNLINK)
  auth              a password in the config, and nodes that refuse clients
                    without one (otherwise warn)
  tls               tls-enabled=true (otherwise warn)
  latency           PING round trip to each node, median of 5 (5 ms or more: warn)

Options: --config, --config-file, --json, --quiet (see ors-redis --help).

Exit status: 0 every check passed or warned; 1 any check failed (or the
cluster cannot be reached); 2 usage or config error.
";

pub const CAPACITY: &str = "\
Usage: ors-redis capacity [--ors-pairs N] [--sessions N] [--avg-bytes SIZE]
                          [--ors-memory SIZE] [--sample N] [options]

ORS's sizing rules, turned into numbers for your plan:
  - at least 3 Redis masters, and about 3 per 9 ORS HA pairs:
    masters = max(3, ceil(pairs / 3)), each with a replica on another host;
  - each Redis node with memory similar to an ORS application node's.
  Session data per master = sessions x (avg-bytes + Redis's overhead) / masters;
  the suggested maxmemory adds 30% (fragmentation, replication and client buffers).

Then a projection measured on this cluster: the sessions of this cluster name
are counted on every master (SCAN), up to --sample of them are measured with
MEMORY USAGE (Redis 4.0+), plus 72 bytes each for the TTL entry and hash-table
slots that MEMORY USAGE leaves out, or, where the server has no MEMORY USAGE,
with STRLEN and an estimate of Redis's overhead (the output says which). Each
master's memory (INFO memory: used_memory) is projected for its share of the
planned sessions and compared with its maxmemory, or with the host's RAM when
maxmemory is 0.

  --ors-pairs N       ORS HA pairs (primary + backup) that use this cluster
  --sessions N        sessions to plan for, all ORS nodes together
                      (default for the projection: as many as now)
  --avg-bytes SIZE    average session size, for the rules (4096, 4K, ...)
  --ors-memory SIZE   memory of one ORS application node (16G, ...)
  --sample N          sessions to measure at most (default 1000; 0: none)

SIZE: bytes, or with a K, M, G or T suffix (powers of 1024).

Exit status: 0 the projection fits; 1 a master would go over its limit, or
the cluster has fewer than 3 masters; 2 usage or config error.
";

pub const SESSIONS: &str = "\
Usage: ors-redis sessions <subcommand> [arguments] [options]

Inspect and clean up the sessions of the cluster name in the config, stored
under ORS:<cluster-name>:{<session-id>}. Listings use SCAN on every master,
never KEYS (which blocks a node); each id is reported once. Long scans show a
progress indicator on stderr when it is a terminal (plain lines otherwise).

  list [--prefix P]   the session ids, sorted, with their master
  count [--prefix P]  how many sessions, per master
  get ID              one session's value and TTL
  del ID              delete one session (UNLINK; DEL before Redis 4.0)
  purge --yes         delete every key under ORS:<cluster-name>: (decommissioning)

'ors-redis sessions <subcommand> --help' tells more.
";

pub const SESSIONS_LIST: &str = "\
Usage: ors-redis sessions list [--prefix P] [options]

Lists the session ids of this cluster name, sorted, with the master each lives
on (a table, or with --json an array). --prefix P keeps the ids that start
with P (taken literally: * ? [ ] are not wildcards). The number found goes to
stderr unless --quiet.

Exit status: 0 listed (even none); 1 the cluster could not be scanned; 2 usage
or config error.
";

pub const SESSIONS_COUNT: &str = "\
Usage: ors-redis sessions count [--prefix P] [options]

Counts the sessions of this cluster name (each id once), per master and in
total. --prefix P counts the ids that start with P.

Exit status: 0 counted; 1 the cluster could not be scanned; 2 usage or config
error.
";

pub const SESSIONS_GET: &str = "\
Usage: ors-redis sessions get ID [--raw | --escaped] [options]

Prints one session's value and its TTL. When stdout is not a terminal the
value goes out raw, byte for byte (ors-redis sessions get ID > state.bin), and
a summary line with the size and TTL goes to stderr. On a terminal it is shown
as text (control characters escaped as \\xNN) or, for binary values, as a
hexdump, after the key, node, size and TTL. --raw and --escaped choose either
form regardless. With --json: an object with the TTL and the value (as text
when it is UTF-8, else base64: see \"encoding\").

Exit status: 0 found; 1 no such session (or an error); 2 usage or config error.
";

pub const SESSIONS_DEL: &str = "\
Usage: ors-redis sessions del ID [options]

Deletes one session, with UNLINK (DEL on servers before Redis 4.0).

Exit status: 0 deleted; 1 no such session (or an error); 2 usage or config
error.
";

pub const SESSIONS_PURGE: &str = "\
Usage: ors-redis sessions purge --yes [options]

Deletes every key under ORS:<cluster-name>: on every master (sessions and
anything else under that prefix), for decommissioning a cluster name. Stop
every ORS that uses this cluster name first. It scans again afterwards until a
pass finds nothing left (at most 4 passes).

Without --yes nothing is deleted: it counts the keys it would delete, says so,
and exits with status 2.

Exit status: 0 purged and verified; 1 keys kept appearing (is an ORS still
writing?) or an error; 2 without --yes, usage or config error.
";
