//! Thread dumps (`spool::debug`) of a program with green threads blocked
//! in every kind of wait spool records: each thread's line says what it
//! waits for, where it blocked (the line of the blocking call in this
//! file), where and by whom it was spawned; the aggregated view counts the
//! threads blocked at one call site; the JSON nests the threads of a task
//! group under the group's scope; a thread waiting for a lock is shown
//! with the thread that holds it as of the dump, and lock-order cycles
//! among some threads are found while the others run. Through the public
//! API only, the scenarios on a one-worker runtime, a two-worker runtime
//! and a plain OS thread, under a watchdog.

use crate::common;

use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use spool::debug::{self, Dump, SocketOp, ThreadInfo, WaitReason};
use spool::net::{TcpListener, TcpStream, UdpSocket};
use spool::os::unix::net::UnixStream;
use spool::sync::mpmc::{self, select, Select};
use spool::sync::{
    Arc, Barrier, Condvar, Event, LazyLock, Mutex, Once, OnceLock, RwLock, Semaphore, WaitGroup,
};
use spool::thread::{self, JoinHandle, ThreadId};
use spool::Runtime;

/// Per-test watchdog limit: far above what any test needs.
const LIMIT: Duration = Duration::from_secs(120);

/// A prefix that makes this run's thread names unique: the three
/// configurations of a test run at once, and a dump lists the threads of
/// every runtime in the process.
fn unique_prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("d{}-", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A green thread this test blocked on purpose, and what a dump must say
/// about it.
struct Blocked {
    name: String,
    /// The line of its blocking call in this file.
    line: u32,
    /// The call site of the spawn.
    spawned_at: &'static Location<'static>,
    handle: JoinHandle<()>,
}

/// Spawns the named green threads of one test run.
struct Spawner {
    prefix: String,
    me: ThreadId,
    threads: Vec<Blocked>,
}

impl Spawner {
    fn new() -> Spawner {
        Spawner {
            prefix: unique_prefix(),
            me: thread::current().id(),
            threads: Vec::new(),
        }
    }

    /// Spawns green thread `name` running `f`, which blocks at `line` (the
    /// caller writes `line!()` on the line of the blocking call).
    #[track_caller]
    fn go(&mut self, name: &str, line: u32, f: impl FnOnce() + Send + 'static) -> ThreadId {
        let name = format!("{}{name}", self.prefix);
        let spawned_at = Location::caller();
        let handle = thread::Builder::new().name(name.clone()).spawn(f).unwrap();
        let id = handle.thread().id();
        self.threads.push(Blocked {
            name,
            line,
            spawned_at,
            handle,
        });
        id
    }

    fn get(&self, name: &str) -> &Blocked {
        let name = format!("{}{name}", self.prefix);
        self.threads.iter().find(|b| b.name == name).unwrap()
    }
}

/// Ignores a blocking call's result (the tests only look at the wait).
fn ignore<T>(_: T) {}

/// The thread named `name` in `dump`.
fn find<'d>(dump: &'d Dump, name: &str) -> Option<ThreadInfo<'d>> {
    dump.threads().find(|t| t.name() == Some(name))
}

/// Takes dumps until every thread of `expected` (full name, kind) shows as
/// waiting in a wait of that kind (the test's watchdog bounds the wait).
fn dump_when_blocked(expected: &[(String, &str)]) -> Dump {
    loop {
        let dump = debug::dump();
        let all = expected.iter().all(|(name, kind)| {
            find(&dump, name).is_some_and(|t| t.is_waiting() && t.wait_kind() == Some(kind))
        });
        if all {
            return dump;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The `Display` block of thread `id`: its header line and the indented
/// lines under it.
fn block_of(text: &str, id: ThreadId) -> String {
    let header = format!("thread {} ", id.as_u64());
    let start = text
        .find(&format!("\n{header}"))
        .unwrap_or_else(|| panic!("no block for thread {} in:\n{text}", id.as_u64()));
    let rest = &text[start + 1..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// Parks until cancelled, at the caller's line.
#[track_caller]
fn park_forever() {
    loop {
        thread::park();
    }
}

/// Runs a task group named `name` with two children that park until
/// cancelled: the caller waits at the group's exit.
#[track_caller]
fn run_group(name: String) {
    let children = [format!("{name}-child0"), format!("{name}-child1")];
    let _ = spool::group::Builder::new().name(name).run(|g| {
        for child in children {
            g.spawn_named(child, || {
                park_forever();
                Ok(())
            });
        }
        Ok::<(), ()>(())
    });
}

/// Waits on the condition variable of `pair` (nobody notifies it).
#[track_caller]
fn wait_on(pair: &(Mutex<()>, Condvar)) {
    let guard = pair.0.lock().unwrap();
    drop(pair.1.wait(guard));
}

/// Writes to `stream` until a write has to wait for room (the peer never
/// reads).
#[track_caller]
fn write_until_full(mut stream: &TcpStream) {
    let chunk = vec![7u8; 64 * 1024];
    loop {
        if stream.write(&chunk).is_err() {
            return;
        }
    }
}

/// Selects over two channels nobody sends on.
#[track_caller]
fn select_two(a: &mpmc::Receiver<u8>, b: &mpmc::Receiver<u8>) {
    let mut sel = Select::new();
    sel.recv(a);
    sel.recv(b);
    let selected = sel.select();
    let from = if selected.index() == 0 { a } else { b };
    let _ = selected.recv(from);
}

/// What a dump must say about one blocked thread.
struct Expect {
    /// The name after the run's prefix.
    name: &'static str,
    kind: &'static str,
    /// The exact reason, when the test knows it (ids of sockets and
    /// threads); otherwise the reason's description must show an object
    /// id in hex, `#0x…`, if `has_id`.
    reason: Option<WaitReason>,
    has_id: bool,
}

fn expect(name: &'static str, kind: &'static str) -> Expect {
    Expect {
        name,
        kind,
        reason: None,
        has_id: true,
    }
}

fn exactly(name: &'static str, kind: &'static str, reason: WaitReason) -> Expect {
    Expect {
        name,
        kind,
        reason: Some(reason),
        has_id: false,
    }
}

/// Every scope node of a JSON dump's tree, depth first.
fn scope_nodes<'v>(node: &'v serde_json::Value, out: &mut Vec<&'v serde_json::Value>) {
    out.push(node);
    for child in node["scopes"].as_array().expect("scopes is an array") {
        scope_nodes(child, out);
    }
}

/// The names of the threads in `node` and the scopes under it.
fn names_under(node: &serde_json::Value) -> Vec<String> {
    let mut nodes = Vec::new();
    scope_nodes(node, &mut nodes);
    nodes
        .iter()
        .flat_map(|n| n["threads"].as_array().expect("threads is an array"))
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

/// The holder a dump names for a thread waiting on a mutex.
fn mutex_holder(reason: Option<WaitReason>) -> Option<ThreadId> {
    match reason {
        Some(WaitReason::Mutex(_, holder)) => holder,
        _ => None,
    }
}

/// Spawns green thread `name` that takes `first`, waits at `barrier`, then
/// takes `second` (and holds both until cancelled).
fn lock_in_order(
    name: String,
    first: Arc<Mutex<()>>,
    second: Arc<Mutex<()>>,
    barrier: Arc<Barrier>,
) -> JoinHandle<()> {
    thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _one = first.lock().unwrap();
            barrier.wait();
            let _two = second.lock().unwrap();
        })
        .unwrap()
}

rt_test! {
    fn a_dump_shows_every_kind_of_wait_where_it_blocked() {
        let mut b = Spawner::new();
        let p = b.prefix.clone();

        // Channels: a receive nobody sends to, a rendezvous send nobody
        // takes, a select over two silent channels (and the macro form).
        let (tx, rx) = mpmc::unbounded::<u8>();
        let (stx, srx) = mpmc::bounded::<u8>(0);
        let (atx, arx) = mpmc::unbounded::<u8>();
        let (btx, brx) = mpmc::unbounded::<u8>();
        let (arx2, brx2) = (arx.clone(), brx.clone());
        b.go("recv", line!(), move || ignore(rx.recv()));
        b.go("send", line!(), move || ignore(stx.send(1)));
        b.go("select", line!(), move || select_two(&arx, &brx));
        b.go("select!", line!(), move || select! { recv(arx2) -> _m => {}, recv(brx2) -> _m => {} });
        let (mtx, mrx) = spool::sync::mpsc::channel::<u8>();
        b.go("mpsc", line!(), move || ignore(mrx.recv()));
        let (otx, orx) = spool::sync::oneshot::channel::<u8>();
        b.go("oneshot", line!(), move || ignore(orx.recv()));

        // Locks, held by this thread while the dumps are taken.
        let mutex = Arc::new(Mutex::new(()));
        let held = mutex.lock().unwrap();
        let m = mutex.clone();
        b.go("mutex", line!(), move || ignore(m.lock()));
        let for_read = Arc::new(RwLock::new(()));
        let for_write = Arc::new(RwLock::new(()));
        let writing = for_read.write().unwrap();
        let reading = for_write.read().unwrap();
        let (r, w) = (for_read.clone(), for_write.clone());
        b.go("rwlock-read", line!(), move || ignore(r.read()));
        b.go("rwlock-write", line!(), move || ignore(w.write()));

        // Condvar, barrier, semaphore, wait group, event.
        let pair = Arc::new((Mutex::new(()), Condvar::new()));
        let p2 = pair.clone();
        b.go("condvar", line!(), move || wait_on(&p2));
        let barrier = Arc::new(Barrier::new(2));
        let b2 = barrier.clone();
        b.go("barrier", line!(), move || ignore(b2.wait()));
        let sem = Arc::new(Semaphore::new(0));
        let s2 = sem.clone();
        b.go("semaphore", line!(), move || ignore(s2.acquire()));
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let wg2 = wg.clone();
        b.go("waitgroup", line!(), move || wg2.wait());
        let release = Arc::new(Event::new());
        let e2 = release.clone();
        b.go("event", line!(), move || e2.wait());

        // Once, OnceLock, LazyLock: a runner initialises (and waits on a
        // gate inside), another thread waits for it.
        let gate = Arc::new(Event::new());
        let once = Arc::new(Once::new());
        let (g2, o2, o3) = (gate.clone(), once.clone(), once.clone());
        b.go("once-runner", line!(), move || o2.call_once(|| g2.wait()));
        let runner = format!("{p}once-runner");
        dump_when_blocked(&[(runner, "event")]);
        b.go("once", line!(), move || o3.call_once(|| {}));
        let cell = Arc::new(OnceLock::<u8>::new());
        let c2 = cell.clone();
        b.go("oncelock", line!(), move || ignore(c2.wait()));
        let lazy_gate = Arc::new(Event::new());
        let lg = lazy_gate.clone();
        // The runner waits inside the initialiser, written here:
        let (at, lazy) = (line!(), Arc::new(LazyLock::new(move || lg.wait())));
        let (l2, l3) = (lazy.clone(), lazy.clone());
        b.go("lazy-runner", at, move || ignore(LazyLock::force(&l2)));
        let runner = format!("{p}lazy-runner");
        dump_when_blocked(&[(runner, "event")]);
        b.go("lazy", line!(), move || ignore(LazyLock::force(&l3)));

        // Join of a thread that waits for the end of the test, the exit
        // of a scope and of a task group whose children park.
        let r2 = release.clone();
        let target = thread::Builder::new().name(format!("{p}target")).spawn(move || r2.wait());
        let target = target.unwrap();
        let target_id = target.thread().id();
        b.go("join", line!(), move || ignore(target.join()));
        b.go("scope", line!(), move || thread::scope(|s| drop(s.spawn(|| park_forever()))));
        let group = format!("{p}grp");
        let gname = group.clone();
        b.go("group", line!(), move || run_group(gname));

        // Sockets: a read from a silent peer, an accept nobody connects
        // to, a write to a peer that never reads, a UDP receive, a Unix
        // stream read.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let client_fd = client.as_raw_fd();
        b.go("tcp-read", line!(), move || ignore(client.read(&mut [0; 8])));
        let quiet = TcpListener::bind("127.0.0.1:0").unwrap();
        let quiet_fd = quiet.as_raw_fd();
        b.go("accept", line!(), move || ignore(quiet.accept()));
        let writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (sink, _) = listener.accept().unwrap();
        let writer_fd = writer.as_raw_fd();
        b.go("tcp-write", line!(), move || write_until_full(&writer));
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_fd = udp.as_raw_fd();
        b.go("udp", line!(), move || ignore(udp.recv(&mut [0; 8])));
        let (mut unix, unix_peer) = UnixStream::pair().unwrap();
        let unix_fd = unix.as_raw_fd();
        b.go("unix", line!(), move || ignore(unix.read(&mut [0; 8])));

        // The blocking pool: jobs waiting on std channels.
        let (job_tx, job_rx) = std::sync::mpsc::channel::<()>();
        b.go("unblock", line!(), move || ignore(spool::unblock(move || job_rx.recv())));
        let (abandon_tx, abandon_rx) = std::sync::mpsc::channel::<()>();
        b.go("abandon", line!(), move || ignore(spool::unblock_abandon(move || abandon_rx.recv())));

        // And the engine's own waits: park and sleep.
        b.go("park", line!(), || park_forever());
        b.go("sleep", line!(), || thread::sleep(Duration::from_secs(3600)));

        let all = [
            expect("recv", "channel receive"),
            expect("send", "channel send"),
            exactly("select", "select", WaitReason::Select(2)),
            exactly("select!", "select", WaitReason::Select(2)),
            expect("mpsc", "channel receive"),
            expect("oneshot", "channel receive"),
            expect("mutex", "mutex"),
            expect("rwlock-read", "rwlock read"),
            expect("rwlock-write", "rwlock write"),
            expect("condvar", "condvar"),
            expect("barrier", "barrier"),
            expect("semaphore", "semaphore"),
            expect("waitgroup", "wait group"),
            expect("event", "event"),
            expect("once-runner", "event"),
            expect("once", "once"),
            expect("oncelock", "once"),
            expect("lazy-runner", "event"),
            expect("lazy", "once"),
            exactly("join", "join", WaitReason::Join(target_id)),
            exactly("scope", "scope exit", WaitReason::ScopeExit),
            exactly("group", "scope exit", WaitReason::ScopeExit),
            exactly("tcp-read", "socket read", WaitReason::Socket(client_fd, SocketOp::Read)),
            exactly("accept", "socket accept", WaitReason::Socket(quiet_fd, SocketOp::Accept)),
            exactly("tcp-write", "socket write", WaitReason::Socket(writer_fd, SocketOp::Write)),
            exactly("udp", "socket read", WaitReason::Socket(udp_fd, SocketOp::Read)),
            exactly("unix", "socket read", WaitReason::Socket(unix_fd, SocketOp::Read)),
            exactly("unblock", "unblock job", WaitReason::Unblock),
            exactly("abandon", "unblock job", WaitReason::Unblock),
            exactly("park", "park", WaitReason::Park),
            exactly("sleep", "sleep", WaitReason::Sleep),
        ];
        let mut expected: Vec<(String, &str)> =
            all.iter().map(|e| (format!("{p}{}", e.name), e.kind)).collect();
        expected.push((format!("{group}-child0"), "park"));
        expected.push((format!("{group}-child1"), "park"));
        let dump = dump_when_blocked(&expected);
        let text = dump.to_string();

        for e in &all {
            let blocked = b.get(e.name);
            let t = find(&dump, &blocked.name).unwrap();
            let what = &blocked.name;
            let reason = t.wait_reason().unwrap();
            if let Some(exact) = e.reason {
                assert_eq!(reason, exact, "{what}");
            }
            let description = reason.describe();
            if e.has_id {
                assert!(description.contains("#0x"), "{what}: {description}");
            }
            let site = t.blocked_at().unwrap();
            assert_eq!((site.file(), site.line()), ("tests/suite/debug.rs", blocked.line), "{what}");
            let spawned = t.spawned_at().unwrap();
            let spawned_at = (spawned.file(), spawned.line());
            assert_eq!(spawned_at, (blocked.spawned_at.file(), blocked.spawned_at.line()), "{what}");
            assert_eq!(t.spawned_by(), Some(b.me), "{what}");

            let block = block_of(&text, t.id());
            for line in [
                // (A lock's holder may be followed by its name.)
                format!("'{what}' [{description}"),
                format!("    blocked at tests/suite/debug.rs:{}\n", blocked.line),
                format!(
                    "    spawned by thread {} at tests/suite/debug.rs:{}",
                    b.me.as_u64(),
                    blocked.spawned_at.line()
                ),
            ] {
                assert!(block.contains(&line), "{what}: no {line:?} in\n{block}");
            }
        }
        // Locks name their holder as of the dump: this thread holds the
        // mutex and `for_read` for writing, when it is a green thread (an
        // OS thread is not listed, and its locks show no holder); readers
        // are not recorded. A condvar waiter has released its mutex.
        let me_listed = dump.threads().any(|t| t.id() == b.me);
        let me = me_listed.then_some(b.me);
        let holder = |name: &str| {
            let t = find(&dump, &b.get(name).name).unwrap();
            t.wait_reason().and_then(|r| r.lock()).map(|(_, holder)| holder)
        };
        assert_eq!(holder("mutex"), Some(me));
        assert_eq!(holder("rwlock-read"), Some(me));
        assert_eq!(holder("rwlock-write"), Some(None));
        if me_listed {
            let mine = dump.threads().find(|t| t.id() == b.me).unwrap();
            assert_eq!(mine.held_locks().len(), 2, "the mutex and the written rwlock");
        }
        let waiter = find(&dump, &b.get("condvar").name).unwrap();
        assert_eq!(waiter.held_locks(), &[] as &[u64], "a condvar wait releases its mutex");

        // The JSON: runtimes → root → threads, a task group's threads
        // under a scope named as the group.
        let json: serde_json::Value = serde_json::from_str(&dump.to_json()).unwrap();
        assert_eq!(json["threads"].as_u64(), Some(dump.len() as u64));
        let runtimes = json["runtimes"].as_array().unwrap();
        assert!(!runtimes.is_empty());
        let mut listed = Vec::new();
        let mut group_nodes = Vec::new();
        for rt in runtimes {
            assert!(rt["workers"].as_u64().unwrap() >= 1);
            let root = &rt["root"];
            assert!(root["threads"].is_array() && root["scopes"].is_array());
            let mut nodes = Vec::new();
            scope_nodes(root, &mut nodes);
            let mut ids: Vec<u64> = nodes.iter().filter_map(|n| n["scope"].as_u64()).collect();
            let scopes = ids.len();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), scopes, "a scope is one node of the tree");
            for node in nodes {
                if node["name"].as_str() == Some(group.as_str()) {
                    group_nodes.push(node);
                }
                for t in node["threads"].as_array().unwrap() {
                    listed.push(t.clone());
                }
            }
        }
        for e in &all {
            let blocked = b.get(e.name);
            let entries: Vec<_> = listed
                .iter()
                .filter(|t| t["name"].as_str() == Some(blocked.name.as_str()))
                .collect();
            assert_eq!(entries.len(), 1, "{} listed once in the JSON", blocked.name);
            let t = entries[0];
            assert_eq!(t["state"], "waiting");
            assert_eq!(t["kind"], e.kind);
            assert_eq!(t["blocked_at"], format!("tests/suite/debug.rs:{}", blocked.line));
            assert_eq!(t["spawned_by"].as_u64(), Some(b.me.as_u64().get()));
            assert!(t["id"].as_u64().is_some() && t["wait"].is_string());
        }
        assert_eq!(group_nodes.len(), 1, "one scope named {group}");
        let in_group = names_under(group_nodes[0]);
        let body = format!("{p}group");
        for child in [format!("{group}-child0"), format!("{group}-child1"), body] {
            assert!(in_group.contains(&child), "{child} not under {group}: {in_group:?}");
        }

        // Release everything: open the gates, end the channels and jobs,
        // cancel the rest, give the locks back, and join.
        gate.set();
        lazy_gate.set();
        release.set();
        drop((tx, srx, atx, btx, mtx, otx, job_tx, abandon_tx));
        drop((server, sink, unix_peer));
        for blocked in &b.threads {
            blocked.handle.cancel();
        }
        drop((held, writing, reading));
        sem.add_permits(1);
        wg.done();
        for blocked in b.threads {
            let _ = blocked.handle.join();
        }
        assert!(once.is_completed());
        let _ = (barrier, cell, lazy, pair);
    }

    fn a_partial_mutex_deadlock_is_a_wait_for_cycle_of_its_two_threads() {
        let p = unique_prefix();
        // A thread that keeps running through the deadlock (so does this
        // one): the process as a whole is not deadlocked.
        let ticks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(Event::new());
        let (t2, s2) = (ticks.clone(), stop.clone());
        let ticker = thread::spawn(move || {
            while !s2.is_set() {
                t2.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(1));
            }
        });
        // Two threads take two mutexes in opposite orders.
        let (m1, m2) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
        let barrier = Arc::new(Barrier::new(2));
        let (name_a, name_b) = (format!("{p}locker-a"), format!("{p}locker-b"));
        let a = lock_in_order(name_a.clone(), m1.clone(), m2.clone(), barrier.clone());
        let b = lock_in_order(name_b.clone(), m2.clone(), m1.clone(), barrier);
        let (a_id, b_id) = (a.thread().id(), b.thread().id());
        let dump = dump_when_blocked(&[(name_a.clone(), "mutex"), (name_b.clone(), "mutex")]);

        let ours: Vec<Vec<ThreadId>> = dump
            .cycles()
            .into_iter()
            .filter(|c| c.contains(&a_id) || c.contains(&b_id))
            .collect();
        let mut pair = [a_id, b_id];
        pair.sort();
        assert_eq!(ours, vec![pair.to_vec()], "{dump}");
        let text = dump.to_string();
        let first = |id: ThreadId| if id == a_id { &name_a } else { &name_b };
        let cycle_line = format!(
            "wait-for cycle: threads {} '{}' → {} '{}' each wait for the next",
            pair[0].as_u64(),
            first(pair[0]),
            pair[1].as_u64(),
            first(pair[1]),
        );
        assert!(text.contains(&cycle_line), "no {cycle_line:?} in\n{text}");
        for (waiter, holder, name) in [(a_id, b_id, &name_b), (b_id, a_id, &name_a)] {
            let block = block_of(&text, waiter);
            let held = format!(" held by thread {} ('{name}'), ", holder.as_u64());
            assert!(block.contains(&held), "no {held:?} in\n{block}");
        }
        // The rest of the program went on meanwhile.
        let before = ticks.load(Ordering::Relaxed);
        while ticks.load(Ordering::Relaxed) == before {
            thread::sleep(Duration::from_millis(1));
        }

        // Lock acquisitions are cancellation points where they park.
        a.cancel();
        b.cancel();
        let _ = (a.join(), b.join());
        stop.set();
        ticker.join().unwrap();
        drop(m1.try_lock().expect("the cancelled lockers released m1"));
        drop(m2.try_lock().expect("the cancelled lockers released m2"));
    }

    fn a_dump_names_the_thread_a_mutex_was_handed_to_not_the_one_before() {
        let p = unique_prefix();
        let m = Arc::new(Mutex::new(()));
        // Each holder keeps the mutex until its event is set.
        let hold = |name: &str, release: &Arc<Event>| {
            let (m, release) = (m.clone(), release.clone());
            thread::Builder::new()
                .name(format!("{p}{name}"))
                .spawn(move || {
                    let _guard = m.lock().unwrap();
                    release.wait();
                })
                .unwrap()
        };
        let (release_a, release_b) = (Arc::new(Event::new()), Arc::new(Event::new()));
        let a = hold("holder-a", &release_a);
        dump_when_blocked(&[(format!("{p}holder-a"), "event")]);
        let b = hold("next-b", &release_b);
        dump_when_blocked(&[(format!("{p}next-b"), "mutex")]);
        let c = hold("last-c", &release_b);
        let (a_id, b_id, c_id) = (a.thread().id(), b.thread().id(), c.thread().id());
        let holder_for_c = |dump: &Dump| {
            let t = dump.threads().find(|t| t.id() == c_id).unwrap();
            mutex_holder(t.wait_reason())
        };
        let dump = dump_when_blocked(&[(format!("{p}last-c"), "mutex")]);
        assert_eq!(holder_for_c(&dump), Some(a_id), "{dump}");

        // A unlocks: B, first in line, gets the mutex (handed over: B has
        // waited far longer than the starvation threshold) and holds it
        // while it waits for its event; C still waits, now for B.
        release_a.set();
        a.join().unwrap();
        let dump = dump_when_blocked(&[
            (format!("{p}next-b"), "event"),
            (format!("{p}last-c"), "mutex"),
        ]);
        assert_eq!(holder_for_c(&dump), Some(b_id), "{dump}");
        let text = dump.to_string();
        let block = block_of(&text, c_id);
        let held = format!(" held by thread {} ('{p}next-b'), ", b_id.as_u64());
        assert!(block.contains(&held), "no {held:?} in\n{block}");
        let json: serde_json::Value = serde_json::from_str(&dump.to_json()).unwrap();
        let mut nodes = Vec::new();
        for rt in json["runtimes"].as_array().unwrap() {
            scope_nodes(&rt["root"], &mut nodes);
        }
        let entry = nodes
            .iter()
            .flat_map(|n| n["threads"].as_array().unwrap())
            .find(|t| t["id"].as_u64() == Some(c_id.as_u64().get()))
            .unwrap();
        assert_eq!(entry["holder"].as_u64(), Some(b_id.as_u64().get()));

        release_b.set();
        b.join().unwrap();
        c.join().unwrap();
    }
}

#[test]
fn a_wait_that_records_no_reason_does_not_show_the_last_one() {
    let _watchdog = common::Watchdog::new("stale_wait_reason", LIMIT);
    let rt = Runtime::builder().workers(1).build().unwrap();
    // The thread waits on a mutex (recorded), gets it, lets it go, then
    // waits for a dump of its own, a wait of spool's that names no reason.
    // The dump must not say it still waits on the mutex: its holder would
    // make a wait-for edge, and a false cycle, out of a wait long over.
    let m = Arc::new(Mutex::new(()));
    let held = m.lock().unwrap();
    let m2 = Arc::clone(&m);
    let locker = rt.spawn(move || {
        drop(m2.lock().unwrap());
        let me = thread::current().id();
        let dump = debug::dump();
        let own = dump
            .threads()
            .find(|t| t.id() == me)
            .map(|t| (t.is_waiting(), t.wait_reason()));
        own
    });
    // Let it queue on the mutex (a green thread of the runtime; `main` is
    // an OS thread), then let it through.
    std::thread::sleep(Duration::from_millis(50));
    drop(held);
    let own = locker.join().unwrap();
    let Some((waiting, reason)) = own else {
        panic!("the dump does not list the thread that took it");
    };
    assert!(waiting, "the dumping thread waits for the answers");
    assert!(
        !matches!(reason, Some(WaitReason::Mutex(..))),
        "a wait long over is shown: {reason:?}"
    );
}

#[test]
fn a_busy_runtime_does_not_keep_a_dump_from_its_callers_own_runtime() {
    let _watchdog = common::Watchdog::new("busy_runtime_dump", LIMIT);
    // A runtime made first (so a dump asks it first) whose only worker runs
    // a green thread that does not reach a blocking point for longer than
    // a dump waits for answers.
    let busy = Runtime::builder().workers(1).build().unwrap();
    let started = Arc::new(Event::new());
    let started2 = Arc::clone(&started);
    let hog = busy.spawn(move || {
        started2.set();
        // An OS sleep on purpose: it holds the worker.
        std::thread::sleep(Duration::from_millis(600));
    });
    started.wait();
    // A green thread of another runtime dumps: its own worker must still
    // get to answer, so the dump lists the thread that took it.
    let rt = Runtime::builder().workers(1).build().unwrap();
    let me_listed = rt
        .spawn(|| {
            let me = thread::current().id();
            debug::dump().threads().any(|t| t.id() == me)
        })
        .join()
        .unwrap();
    hog.join().unwrap();
    assert!(
        me_listed,
        "a dump taken while another runtime was busy missed its own runtime"
    );
}

#[test]
fn the_aggregated_view_counts_the_threads_blocked_at_each_site() {
    let _watchdog = common::Watchdog::new("aggregated_view", LIMIT);
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let mut b = Spawner::new();
        let p = b.prefix.clone();
        let herd = Arc::new(Event::new());
        let sem = Arc::new(Semaphore::new(0));
        let mut expected = Vec::new();
        for i in 0..5 {
            let e = herd.clone();
            b.go(&format!("herd{i}"), line!(), move || e.wait());
            expected.push((format!("{p}herd{i}"), "event"));
        }
        for i in 0..3 {
            let s = sem.clone();
            b.go(&format!("few{i}"), line!(), move || ignore(s.acquire()));
            expected.push((format!("{p}few{i}"), "semaphore"));
        }
        let dump = dump_when_blocked(&expected);
        let (herd_line, few_line) = (b.get("herd0").line, b.get("few0").line);
        let sites = dump.blocked_sites();
        let at = |line: u32| {
            sites
                .iter()
                .position(|s| {
                    s.site
                        .is_some_and(|l| l.file() == "tests/suite/debug.rs" && l.line() == line)
                })
                .unwrap_or_else(|| panic!("no site at line {line}: {sites:?}"))
        };
        let (herd_at, few_at) = (at(herd_line), at(few_line));
        assert_eq!((sites[herd_at].threads, sites[herd_at].kind), (5, "event"));
        assert_eq!(
            (sites[few_at].threads, sites[few_at].kind),
            (3, "semaphore")
        );
        assert!(herd_at < few_at, "the largest group comes first");
        let text = dump.to_string();
        for line in [
            format!("\n  5 threads blocked at tests/suite/debug.rs:{herd_line} in event, oldest "),
            format!(
                "\n  3 threads blocked at tests/suite/debug.rs:{few_line} in semaphore, oldest "
            ),
        ] {
            assert!(text.contains(&line), "no {line:?} in\n{text}");
        }
        assert!(text.starts_with("spool: "), "{text}");

        herd.set();
        sem.add_permits(3);
        for blocked in b.threads {
            blocked.handle.join().unwrap();
        }
    });
}

#[test]
fn a_dump_of_ten_thousand_blocked_threads_counts_them_all() {
    const THREADS: usize = 10_000;
    let _watchdog = common::Watchdog::new("ten_thousand", LIMIT);
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.run(|| {
        let herd = Arc::new(Event::new());
        let prefix = unique_prefix();
        let mut handles = Vec::with_capacity(THREADS);
        let mut line = 0;
        for i in 0..THREADS {
            let e = herd.clone();
            let named = thread::Builder::new().name(format!("{prefix}{i}"));
            let (l, h) = (line!(), named.spawn(move || e.wait()).unwrap());
            line = l;
            handles.push(h);
        }
        let at_line = |s: &spool::debug::BlockedSite| {
            s.site
                .is_some_and(|l| l.file() == "tests/suite/debug.rs" && l.line() == line)
        };
        let dump = loop {
            let dump = debug::dump();
            if dump
                .blocked_sites()
                .iter()
                .any(|s| at_line(s) && s.threads == THREADS)
            {
                break dump;
            }
            thread::sleep(Duration::from_millis(50));
        };
        let ours = dump
            .threads()
            .filter(|t| t.name().is_some_and(|n| n.starts_with(&prefix)))
            .filter(|t| t.is_waiting() && t.wait_kind() == Some("event"))
            .count();
        assert_eq!(ours, THREADS);
        assert!(dump.len() >= THREADS);
        let text = dump.to_string();
        let line_text =
            format!("\n  10,000 threads blocked at tests/suite/debug.rs:{line} in event, oldest ");
        assert!(text.contains(&line_text), "no {line_text:?}");
        let json: serde_json::Value = serde_json::from_str(&dump.to_json()).unwrap();
        assert_eq!(json["threads"].as_u64(), Some(dump.len() as u64));

        herd.set();
        for h in handles {
            h.join().unwrap();
        }
    });
}
