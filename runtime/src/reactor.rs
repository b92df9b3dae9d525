//! One `mio::Poll` per worker: where an idle worker sleeps and where socket
//! readiness arrives.
//!
//! ARCHITECTURE.md decision 3: each worker owns its reactor, so readiness of
//! a green thread's sockets wakes the worker the green thread is pinned to
//! without cross-thread traffic. An idle worker sleeps in `epoll_wait` with
//! its nearest timer as the timeout; a wakeup from another thread arrives
//! through the worker's `mio::Waker` (an eventfd registered under
//! `WAKER_TOKEN`). Every other token is the address of a socket's
//! readiness record (`io_source.rs`), whose waiters the event unparks. A
//! busy worker polls without blocking at its maintenance passes, while it
//! has sockets registered.

use std::io;
use std::time::Duration;

use mio::{Events, Poll, Registry, Token, Waker};

use crate::io_source::Readiness;
use crate::scheduler::Remote;

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
    /// Creates the reactor, the waker other threads use to rouse it, and a
    /// registry handle through which any thread can register sockets.
    pub(crate) fn new() -> io::Result<(Reactor, Waker, Registry)> {
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
            registry,
        ))
    }

    /// Waits for events for at most `timeout` (`None`: until woken; zero:
    /// just looks) and unparks the threads waiting on ready sockets. mio
    /// rounds a sub-millisecond timeout *up*, so timers never fire early.
    /// Returns how many socket events were dispatched.
    pub(crate) fn poll(&mut self, remote: &Remote, timeout: Option<Duration>) -> usize {
        // Nothing from the previous `epoll_wait` is still being dispatched,
        // and the next cannot name a deregistered descriptor.
        remote.drop_released();
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
            // SAFETY: every other token is a pointer from `Arc::into_raw`
            // whose strong reference is held by the registration until it is
            // released into `remote`'s release list, which is emptied only
            // at the start of a later `poll` of this reactor or once this
            // worker's loop has ended (`has_exited`; see `io_source.rs`,
            // "Lifetime of a token" and "Outliving a runtime"). So the
            // record is alive.
            let readiness = unsafe { &*(token.0 as *const Readiness) };
            readiness.dispatch(event);
            dispatched += 1;
        }
        dispatched
    }
}
