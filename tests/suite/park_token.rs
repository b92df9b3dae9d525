//! The user's park token survives every blocking call of spool, as with
//! std: an `unpark` that arrives while a thread blocks in a lock, a
//! channel, a socket, `join`, `unblock`, a scope or a sleep is kept for the
//! thread's next `park`, which then returns at once. (spool's own waits use
//! a separate wake path; see "Two tokens" in the engine's `park.rs`.) A
//! `check; block; park` loop written for std would otherwise lose its
//! wakeup after porting.
//!
//! Each test runs in the three configurations of `rt_test!` (the blocked
//! thread green on one worker, green on two workers, or a plain OS
//! thread). A helper green thread makes sure the blocked call really
//! blocks, unparks the blocked thread, then releases it.

use crate::common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use spool::net::{TcpListener, TcpStream};
use spool::sync::atomic::{AtomicBool, Ordering};
use spool::sync::{
    mpmc, mpsc, Arc, Barrier, Condvar, Event, Mutex, Once, OnceLock, RwLock, Semaphore, WaitGroup,
};
use spool::thread::{self, Thread};
use spool::Runtime;

const LIMIT: Duration = Duration::from_secs(120);

/// How long the helper lets the blocked thread sit in its call before it
/// unparks it: long enough that the call really blocks (the test stays
/// correct if it did not; it would only not exercise the blocked case).
const SETTLE: Duration = Duration::from_millis(30);

/// Asserts that the calling thread holds a park token: `park_timeout`
/// returns at once instead of waiting out its (long) timeout.
#[track_caller]
fn assert_token_kept(what: &str) {
    let start = Instant::now();
    thread::park_timeout(Duration::from_secs(20));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{what}: an unpark sent while the thread was blocked there was consumed"
    );
}

/// What the helper thread needs: a way to say "I hold the resource", and
/// the thread to unpark.
#[derive(Clone)]
struct Helper {
    holding: Arc<AtomicBool>,
    target: Thread,
}

impl Helper {
    /// Called by the helper once it holds whatever the target will block on.
    fn holding(&self) {
        self.holding.store(true, Ordering::Release);
    }

    /// Lets the target block, unparks it, and gives the unpark time to
    /// land before the helper releases the target.
    fn unpark_target(&self) {
        thread::sleep(SETTLE);
        self.target.unpark();
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `helper` on a green thread and, once it holds its resource,
/// `blocking` on the calling thread; then checks the token survived.
#[track_caller]
fn token_survives(
    what: &str,
    helper: impl FnOnce(Helper) + Send + 'static,
    blocking: impl FnOnce(),
) {
    let h = Helper {
        holding: Arc::new(AtomicBool::new(false)),
        target: thread::current(),
    };
    let holding = h.holding.clone();
    let helper = thread::spawn(move || helper(h));
    while !holding.load(Ordering::Acquire) {
        thread::yield_now();
    }
    blocking();
    helper.join().unwrap();
    assert_token_kept(what);
}

/// A connected loopback pair.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

rt_test! {
    fn mutex_lock_keeps_the_token() {
        let m = Arc::new(Mutex::new(0));
        let m2 = m.clone();
        token_survives("Mutex::lock", move |h| {
            let guard = m2.lock().unwrap();
            h.holding();
            h.unpark_target();
            drop(guard);
        }, || {
            *m.lock().unwrap() += 1;
        });
    }

    fn rwlock_read_and_write_keep_the_token() {
        let l = Arc::new(RwLock::new(0));
        let l2 = l.clone();
        token_survives("RwLock::read", move |h| {
            let guard = l2.write().unwrap();
            h.holding();
            h.unpark_target();
            drop(guard);
        }, || {
            let _ = *l.read().unwrap();
        });
        let l2 = l.clone();
        token_survives("RwLock::write", move |h| {
            let guard = l2.read().unwrap();
            h.holding();
            h.unpark_target();
            drop(guard);
        }, || {
            *l.write().unwrap() += 1;
        });
    }

    fn condvar_wait_keeps_the_token() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let pair2 = pair.clone();
        token_survives("Condvar::wait", move |h| {
            h.holding();
            h.unpark_target();
            *pair2.0.lock().unwrap() = true;
            pair2.1.notify_all();
        }, || {
            let guard = pair.0.lock().unwrap();
            let _guard = pair.1.wait_while(guard, |ready| !*ready).unwrap();
        });
        // And the timed wait.
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let pair2 = pair.clone();
        token_survives("Condvar::wait_timeout", move |h| {
            h.holding();
            h.unpark_target();
            *pair2.0.lock().unwrap() = true;
            pair2.1.notify_all();
        }, || {
            let guard = pair.0.lock().unwrap();
            let (_guard, result) = pair
                .1
                .wait_timeout_while(guard, Duration::from_secs(60), |ready| !*ready)
                .unwrap();
            assert!(!result.timed_out());
        });
    }

    fn once_and_once_lock_keep_the_token() {
        let once = Arc::new(Once::new());
        let once2 = once.clone();
        token_survives("Once::call_once", move |h| {
            once2.call_once(|| {
                h.holding();
                h.unpark_target();
            });
        }, || {
            once.call_once(|| unreachable!("the helper runs the initialiser"));
        });
        let cell = Arc::new(OnceLock::new());
        let cell2 = cell.clone();
        token_survives("OnceLock::get_or_init", move |h| {
            cell2.get_or_init(|| {
                h.holding();
                h.unpark_target();
                7
            });
        }, || {
            assert_eq!(*cell.get_or_init(|| 0), 7);
        });
    }

    fn semaphore_barrier_wait_group_and_event_keep_the_token() {
        let sem = Arc::new(Semaphore::new(1));
        let sem2 = sem.clone();
        token_survives("Semaphore::acquire", move |h| {
            let permit = sem2.acquire();
            h.holding();
            h.unpark_target();
            drop(permit);
        }, || {
            drop(sem.acquire());
        });
        let barrier = Arc::new(Barrier::new(2));
        let barrier2 = barrier.clone();
        token_survives("Barrier::wait", move |h| {
            h.holding();
            h.unpark_target();
            barrier2.wait();
        }, || {
            barrier.wait();
        });
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let wg2 = wg.clone();
        token_survives("WaitGroup::wait", move |h| {
            h.holding();
            h.unpark_target();
            wg2.done();
        }, || {
            wg.wait();
        });
        let event = Arc::new(Event::new());
        let event2 = event.clone();
        token_survives("Event::wait", move |h| {
            h.holding();
            h.unpark_target();
            event2.set();
        }, || {
            event.wait();
        });
    }

    fn channel_receives_and_sends_keep_the_token() {
        let (tx, rx) = mpmc::bounded::<u32>(0);
        token_survives("mpmc::Receiver::recv", move |h| {
            h.holding();
            h.unpark_target();
            tx.send(1).unwrap();
        }, || {
            assert_eq!(rx.recv(), Ok(1));
        });
        let (tx, rx) = mpmc::bounded::<u32>(0);
        token_survives("mpmc::Sender::send", move |h| {
            h.holding();
            h.unpark_target();
            assert_eq!(rx.recv(), Ok(2));
        }, || {
            tx.send(2).unwrap();
        });
        let (tx, rx) = mpmc::unbounded::<u32>();
        token_survives("mpmc select!", move |h| {
            h.holding();
            h.unpark_target();
            tx.send(3).unwrap();
        }, || {
            spool::sync::mpmc::select! {
                recv(rx) -> msg => assert_eq!(msg, Ok(3)),
                default(Duration::from_secs(60)) => panic!("timed out"),
            }
        });
        let (tx, rx) = mpsc::channel::<u32>();
        token_survives("mpsc::Receiver::recv_timeout", move |h| {
            h.holding();
            h.unpark_target();
            tx.send(4).unwrap();
        }, || {
            assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(4));
        });
    }

    fn socket_accept_read_and_write_keep_the_token() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        token_survives("TcpListener::accept", move |h| {
            h.holding();
            h.unpark_target();
            drop(TcpStream::connect(addr).unwrap());
        }, || {
            listener.accept().unwrap();
        });
        let (mut client, mut server) = tcp_pair();
        token_survives("TcpStream::read", move |h| {
            h.holding();
            h.unpark_target();
            server.write_all(b"x").unwrap();
        }, || {
            let mut byte = [0];
            client.read_exact(&mut byte).unwrap();
        });
        // A write blocks once the socket buffers are full; the helper then
        // drains them.
        let (mut client, mut server) = tcp_pair();
        const LEN: usize = 32 << 20;
        token_survives("TcpStream::write", move |h| {
            h.holding();
            h.unpark_target();
            let mut sink = vec![0; LEN];
            server.read_exact(&mut sink).unwrap();
        }, || {
            client.write_all(&vec![1; LEN]).unwrap();
        });
    }

    fn join_scope_unblock_and_sleep_keep_the_token() {
        token_survives("JoinHandle::join", |h| {
            h.holding();
        }, || {
            let me = thread::current();
            thread::spawn(move || {
                thread::sleep(SETTLE);
                me.unpark();
            })
            .join()
            .unwrap();
        });
        token_survives("thread::scope", |h| h.holding(), || {
            let me = thread::current();
            thread::scope(|s| {
                s.spawn(|| {
                    thread::sleep(SETTLE);
                    me.unpark();
                });
            });
        });
        token_survives("unblock", |h| {
            h.holding();
            h.unpark_target();
        }, || {
            spool::unblock(|| std::thread::sleep(SETTLE * 3));
        });
        token_survives("thread::sleep", |h| {
            h.holding();
            h.unpark_target();
        }, || {
            let start = Instant::now();
            thread::sleep(SETTLE * 3);
            assert!(start.elapsed() >= SETTLE * 3, "an unpark cut a sleep short");
        });
    }
}
