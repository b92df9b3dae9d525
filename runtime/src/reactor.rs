//! One `mio::Poll` per worker: where an idle worker sleeps.
//!
//! ARCHITECTURE.md decision 3: each worker owns its reactor, so readiness of
//! a green thread's sockets wakes the worker the green thread is pinned to
//! without cross-thread traffic. An idle worker sleeps in `epoll_wait` with
//! its nearest timer as the timeout; a wakeup from another thread arrives
//! through the worker's `mio::Waker` (an eventfd registered under
//! `WAKER_TOKEN`).
//!
//! Today the only event source is the waker; socket readiness plugs in here
//! by dispatching other tokens to the waiting green threads.

use std::io;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};

/// The token of the worker's waker.
const WAKER_TOKEN: Token = Token(usize::MAX);

/// How many events one `epoll_wait` returns at most.
const EVENTS_CAPACITY: usize = 256;

/// A worker's reactor.
pub(crate) struct Reactor {
    poll: Poll,
    events: Events,
}

impl Reactor {
    /// Creates the reactor and the waker other threads use to rouse it.
    pub(crate) fn new() -> io::Result<(Reactor, Waker)> {
        let poll = Poll::new().map_err(|e| crate::describe_fd_error(e, "an epoll instance"))?;
        let waker = Waker::new(poll.registry(), WAKER_TOKEN)
            .map_err(|e| crate::describe_fd_error(e, "an eventfd waker"))?;
        Ok((
            Reactor {
                poll,
                events: Events::with_capacity(EVENTS_CAPACITY),
            },
            waker,
        ))
    }

    /// Waits for events for at most `timeout` (`None`: until woken). mio
    /// rounds a sub-millisecond timeout *up*, so timers never fire early.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            // A signal interrupted epoll_wait: the loop re-checks its work.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => crate::fatal(&format!("Reactor::wait: epoll_wait failed: {e}")),
        }
        // The only registered source is the waker, whose eventfd mio
        // resets; its events carry no further information.
        self.events.clear();
    }
}
