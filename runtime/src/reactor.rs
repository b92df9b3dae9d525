//! One `mio::Poll` per worker: where an idle worker sleeps and where socket
//! readiness arrives.
//!
//! Each worker owns its reactor, so readiness of
//! a green thread's sockets wakes the worker the green thread is pinned to
//! without cross-thread traffic. An idle worker sleeps in `epoll_wait` with
//! its nearest timer as the timeout; a wakeup from another thread arrives
//! through the worker's `mio::Waker` (an eventfd registered under
//! `WAKER_TOKEN`). Every other token is the address of a socket's
//! readiness record (`io_source.rs`), whose waiters the event wakes. A
//! busy worker polls without blocking at its maintenance passes, while it
//! has sockets registered.
//!
//! Any thread may register a socket with a worker, so the worker's side of
//! registration, `Registrations`, lives in its `Remote`: the registry
//! handle, the records of the registered sockets, and the records released
//! by deregistration but possibly still named by fetched events. One lock
//! guards all three, and the worker's exit (`Registrations::close`) takes
//! it too, so a registration, a deregistration and the exit happen in one
//! order that every party sees (see `io_source.rs`, "Lifetime of a token"
//! and "Outliving a runtime").

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use crate::io_source::Readiness;
use crate::scheduler::{lock, Remote};

/// The token of the worker's waker.
const WAKER_TOKEN: Token = Token(usize::MAX);

/// How many events one `epoll_wait` returns at most.
const EVENTS_CAPACITY: usize = 1024;

/// A worker's reactor.
pub(crate) struct Reactor {
    poll: Poll,
    events: Events,
}

impl Reactor {
    /// Creates the reactor, the waker other threads use to rouse it, and
    /// the registrations through which any thread can register sockets.
    pub(crate) fn new() -> io::Result<(Reactor, Waker, Registrations)> {
        let poll = Poll::new().map_err(|e| crate::describe_fd_error(e, "an epoll instance"))?;
        let waker = Waker::new(poll.registry(), WAKER_TOKEN)
            .map_err(|e| crate::describe_fd_error(e, "an eventfd waker"))?;
        let registry = poll
            .registry()
            .try_clone()
            .map_err(|e| crate::describe_fd_error(e, "an epoll handle"))?;
        Ok((
            Reactor {
                poll,
                events: Events::with_capacity(EVENTS_CAPACITY),
            },
            waker,
            Registrations::new(registry),
        ))
    }

    /// Waits for events for at most `timeout` (`None`: until woken; zero:
    /// just looks) and wakes the threads waiting on ready sockets. mio
    /// rounds a sub-millisecond timeout *up*, so timers never fire early.
    /// Returns how many socket events were dispatched.
    pub(crate) fn poll(&mut self, remote: &Remote, timeout: Option<Duration>) -> usize {
        // Nothing from the previous `epoll_wait` is still being dispatched,
        // and the next cannot name a deregistered descriptor.
        remote.sources.drop_released();
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            // A signal interrupted epoll_wait: the loop re-checks its work.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => crate::fatal(&format!("Reactor::poll: epoll_wait failed: {e}")),
        }
        let mut dispatched = 0;
        for event in self.events.iter() {
            let token = event.token();
            if token == WAKER_TOKEN {
                // mio resets the eventfd; the event carries nothing more.
                continue;
            }
            // SAFETY: every other token is the address of a readiness record
            // that `remote.sources` holds a strong reference to from its
            // registration on; deregistration moves that reference to the
            // release list, which is emptied only at the start of a later
            // `poll` of this reactor or by `Registrations::close` once this
            // worker's loop has ended and it polls no more (see
            // `io_source.rs`, "Lifetime of a token"). So the record is alive.
            let readiness = unsafe { &*(token.0 as *const Readiness) };
            readiness.dispatch(event);
            dispatched += 1;
        }
        dispatched
    }
}

/// The worker's side of socket registration, shared with every thread (it
/// lives in the worker's `Remote`); see the module comment.
pub(crate) struct Registrations {
    table: Mutex<Table>,
    /// Set (under the lock, before any waiter is woken) when the worker
    /// has exited; read without the lock by `IoSource`'s fast path.
    exited: AtomicBool,
    /// How many descriptors are registered; while there are none, a busy
    /// worker skips polling its reactor.
    count: AtomicUsize,
    /// Set when `Table::released` may be non-empty, so the worker's poll
    /// can skip the lock.
    has_released: AtomicBool,
}

/// What `Registrations` guards.
struct Table {
    /// A handle on the worker's epoll instance; `None` once it has exited.
    registry: Option<Registry>,
    /// The records of the registered descriptors, by slot: each holds the
    /// strong reference that the descriptor's epoll token (the record's
    /// address) stands for.
    slots: Vec<Option<Arc<Readiness>>>,
    /// Free indexes into `slots`.
    free: Vec<usize>,
    /// Records of deregistered descriptors that an `epoll_wait` already
    /// under way may still name; dropped before the worker's next one.
    released: Vec<Arc<Readiness>>,
}

impl Registrations {
    fn new(registry: Registry) -> Registrations {
        Registrations {
            table: Mutex::new(Table {
                registry: Some(registry),
                slots: Vec::new(),
                free: Vec::new(),
                released: Vec::new(),
            }),
            exited: AtomicBool::new(false),
            count: AtomicUsize::new(0),
            has_released: AtomicBool::new(false),
        }
    }

    /// Whether the worker has exited: it polls no more, and its records
    /// are gone (see `io_source.rs`, "Outliving a runtime").
    pub(crate) fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// Whether any descriptor is registered.
    pub(crate) fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// How many sockets are registered (for the monitor's figures).
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Registers `fd`, edge-triggered for both directions, under the
    /// address of `record`, and keeps a strong reference to `record` for as
    /// long as events may name it. Returns the slot to deregister with.
    pub(crate) fn register(&self, fd: RawFd, record: &Arc<Readiness>) -> io::Result<usize> {
        let mut table = lock(&self.table);
        let Some(registry) = table.registry.as_ref() else {
            return Err(io::Error::other(
                "the runtime of the worker it was to be registered with has shut down",
            ));
        };
        let token = Token(Arc::as_ptr(record) as usize);
        registry.register(
            &mut SourceFd(&fd),
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let record = Some(Arc::clone(record));
        let slot = match table.free.pop() {
            Some(slot) => {
                table.slots[slot] = record;
                slot
            }
            None => {
                table.slots.push(record);
                table.slots.len() - 1
            }
        };
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(slot)
    }

    /// Removes `fd`, registered in `slot`, from the epoll set and hands its
    /// record to the worker, which drops it before its next `epoll_wait`.
    /// Does nothing once the worker has exited: it dropped the record then.
    ///
    /// `fd` must still be open and be the descriptor registered in `slot`.
    pub(crate) fn deregister(&self, fd: RawFd, slot: usize) {
        let mut table = lock(&self.table);
        let Some(registry) = table.registry.as_ref() else {
            return;
        };
        // An error would mean the descriptor is not in the set, which
        // deregistration cannot make worse.
        let _ = registry.deregister(&mut SourceFd(&fd));
        let Some(record) = table.slots.get_mut(slot).and_then(Option::take) else {
            crate::fatal("Registrations::deregister: the slot holds no record");
        };
        table.free.push(slot);
        table.released.push(record);
        // Under the lock, after the push: see `drop_released`.
        self.has_released.store(true, Ordering::Release);
        self.count.fetch_sub(1, Ordering::Relaxed);
    }

    /// Drops released records. Called by the worker between a finished
    /// dispatch and its next `epoll_wait`, which can no longer return the
    /// deregistered descriptors.
    pub(crate) fn drop_released(&self) {
        // A release after the swap sets the flag again, so its record is
        // dropped now (if it was pushed before our lock) or at the next
        // call.
        if self.has_released.load(Ordering::Relaxed)
            && self.has_released.swap(false, Ordering::Acquire)
        {
            let released = std::mem::take(&mut lock(&self.table).released);
            drop(released);
        }
    }

    /// Called once by the worker as it exits, after its last poll: closes
    /// the registry handle, wakes every thread waiting on a registered
    /// descriptor so that it registers again elsewhere, and drops every
    /// record (see `io_source.rs`, "Outliving a runtime").
    pub(crate) fn close(&self) {
        let (registered, released) = {
            let mut table = lock(&self.table);
            table.registry = None;
            // Before the wakeups below: a waiter that sees one of them sees
            // this flag too.
            self.exited.store(true, Ordering::Release);
            self.count.store(0, Ordering::Relaxed);
            table.free = Vec::new();
            (
                std::mem::take(&mut table.slots),
                std::mem::take(&mut table.released),
            )
        };
        drop(released);
        for record in registered.into_iter().flatten() {
            record.wake_all();
        }
    }
}
