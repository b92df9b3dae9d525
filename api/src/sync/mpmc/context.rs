//! A waiter: one blocked thread and the word that says which of its
//! operations won. See "Waiters and selection" at the top of `chan.rs`.

use std::panic::Location;
use std::sync::Arc;
use std::time::Instant;

use spool_runtime::trace::WaitReason;

use crate::loom::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use crate::loom::chan_cancel::{self, Cancelled, Check};
use crate::loom::hint;
use crate::loom::thread::{self, Thread};

/// Nobody has selected the waiter yet.
pub(crate) const WAITING: usize = 0;
/// The waiter gave up (its deadline passed, its thread was cancelled, or a
/// registration found an operation ready) before anyone selected it.
pub(crate) const ABORTED: usize = 1;
/// A channel the waiter is registered on was disconnected.
pub(crate) const DISCONNECTED: usize = 2;
/// Operation `k` of a waiter is selected by storing `FIRST_OPERATION + k`.
pub(crate) const FIRST_OPERATION: usize = 3;

#[cfg(not(loom))]
crate::thread_local! {
    /// The calling thread's reusable context (see `Context::current`).
    static CONTEXT: Arc<Context> = Context::new();
}

/// How many times a waiting green thread yields to its worker's other
/// green threads before it parks (see `wait_until`): its counterpart is
/// often runnable on the same worker, and a yield (≈ 14 ns switch) is much
/// cheaper than a park and unpark. Few, because a yielding waiter also
/// takes turns from the threads it waits for: in `peers/benches/channels.rs`,
/// 0 / 2 / 16 yields gave pingpong_rendezvous/1w 438 / 371 / 364 ns and
/// bounded1024_select_rx (four producers, one selecting consumer) 459 /
/// 446 / 535 ns. None under loom, where yields would only multiply the
/// interleavings to explore.
const GREEN_YIELDS: usize = if cfg!(loom) { 0 } else { 2 };

/// How many more times a waiting green thread yields if it is alone on its
/// worker (`alone_on_worker`), about 3 µs: the worker would only spin idle
/// (see "Worker sleeping" in the engine's scheduler), and a waiter that
/// has not parked sees its counterpart's hand-off without a wake through
/// the worker's inbox. None under loom.
const ALONE_YIELDS: usize = if cfg!(loom) { 0 } else { 32 };

/// How many `pause`s a waiting OS thread spins for before it blocks (about
/// a microsecond): its counterpart often runs on another core.
const OS_SPINS: usize = 64;

/// One blocked `send`, `recv` or `select`.
///
/// # Invariant
/// `state` leaves `WAITING` exactly once per registration round, by a
/// compare-and-swap, so exactly one party decides the outcome: one
/// counterpart (which then completes or hands over the operation), a
/// disconnecting channel, or the waiter itself (`ABORTED`).
pub(crate) struct Context {
    state: AtomicUsize,
    /// Set by the owner before it blocks (after its spin or yields), in
    /// `wait` or `Packet::wait_take`; a selector's `unpark` wakes the
    /// thread only if it is set (see "Waking only a sleeper" in `chan.rs`).
    /// Cleared by `reset`.
    asleep: AtomicBool,
    /// A zero-capacity receiver that selects a *select*-registered sender
    /// (which registered no value) leaves here an `Arc<Packet<T>>` for the
    /// sender to fill, as a raw pointer since the context is not generic.
    /// Written under the selecting channel's lock, right after the CAS
    /// that selected us; read by the owner only after it has since taken
    /// that same lock (to unregister), which orders the write before the
    /// read. So `Relaxed` suffices.
    packet: AtomicPtr<()>,
    thread: Thread,
}

impl Context {
    /// The calling thread's context, reused across its blocking
    /// operations (a thread is in at most one at a time). Kept in
    /// green-thread-local storage, so each green thread has its own; a
    /// fresh one when that storage is already destroyed (thread exit).
    ///
    /// Reuse is safe because an operation returns only once its entries
    /// are gone from every wait list (removed by a selector, by a
    /// disconnection or by the operation itself, each under the list's
    /// lock), so no party can still decide this context's state; a late
    /// `unpark` from a selector that already decided it is a harmless
    /// spurious wakeup for the next operation, which re-checks its state.
    #[cfg(not(loom))]
    pub(crate) fn current() -> Arc<Context> {
        CONTEXT
            .try_with(Arc::clone)
            .unwrap_or_else(|_| Context::new())
    }

    /// Runs `f` with a borrow of the calling thread's context (see
    /// `current`), saving the reference-count traffic of a clone. The
    /// borrow may be held across a park: green-thread-local values live in
    /// the green thread itself.
    #[cfg(not(loom))]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Arc<Context>) -> R) -> R {
        let mut f = Some(f);
        let run = |cx: &Arc<Context>| (f.take().expect("called once"))(cx);
        match CONTEXT.try_with(run) {
            Ok(result) => result,
            // The thread's local storage is gone (thread exit): use a
            // fresh context.
            Err(_) => (f.take().expect("not called yet"))(&Context::new()),
        }
    }

    /// Under loom, a fresh context each time: loom's threads share the OS
    /// thread's local storage, and a context must not outlive a model run.
    #[cfg(loom)]
    pub(crate) fn current() -> Arc<Context> {
        Context::new()
    }

    /// Under loom, `f` with a fresh context (see the loom `current`).
    #[cfg(loom)]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Arc<Context>) -> R) -> R {
        f(&Context::new())
    }

    /// A fresh context for the calling thread, in state `WAITING`.
    fn new() -> Arc<Context> {
        Arc::new(Context {
            state: AtomicUsize::new(WAITING),
            asleep: AtomicBool::new(false),
            packet: AtomicPtr::new(std::ptr::null_mut()),
            thread: thread::current(),
        })
    }

    /// Makes the context reusable for another registration round.
    ///
    /// Only called by its owner when it is registered nowhere (every entry
    /// was removed, by a selector or by the owner's own unregistration,
    /// each under a channel lock), so no other thread can look at it.
    /// `Relaxed` is enough: the next registration publishes the context
    /// through a channel lock.
    ///
    /// A selector of an earlier round may still look at `asleep`: if it
    /// sees this `false`, the wait it decided is over already; if it sees a
    /// later `true`, its wake is a harmless spurious one.
    pub(crate) fn reset(&self) {
        self.state.store(WAITING, Ordering::Relaxed);
        self.asleep.store(false, Ordering::Relaxed);
        self.packet.store(std::ptr::null_mut(), Ordering::Relaxed);
    }

    /// Tries to decide the outcome: `WAITING → outcome`. Returns whether
    /// this call decided it.
    ///
    /// `AcqRel`: the `Release` half publishes whatever the selector wrote
    /// before (e.g. a filled packet) to the waiter's `Acquire` load in
    /// `wait_until`; the `Acquire` half orders the selector after the
    /// waiter's registration writes. Failure needs no ordering: the loser
    /// only learns it lost.
    pub(crate) fn try_select(&self, outcome: usize) -> bool {
        self.state
            .compare_exchange(WAITING, outcome, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// The current outcome (`Acquire`, pairing with `try_select`).
    pub(crate) fn state(&self) -> usize {
        self.state.load(Ordering::Acquire)
    }

    /// Whether this context belongs to the same `Arc` as `other`.
    pub(crate) fn is(&self, other: &Context) -> bool {
        std::ptr::eq(self, other)
    }

    /// Wakes the waiting thread if it has announced that it blocks; call
    /// after deciding its outcome (`try_select`) or settling its packet.
    /// A thread still spinning or yielding sees that change itself, and
    /// waking it would only cost a read-modify-write of its wake word (a
    /// cache line the waiter owns) and leave it a stale token.
    ///
    /// The `SeqCst` fence pairs with the one in `announce_sleep` (see
    /// "Waking only a sleeper" in `chan.rs`). `wake` publishes the caller's
    /// prior writes to the woken thread (the engine's guarantee).
    pub(crate) fn unpark(&self) {
        fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::Relaxed) {
            self.thread.wake();
        }
    }

    /// The owner is about to block until its state or packet changes:
    /// from here on, `unpark` wakes it. The caller re-checks what it waits
    /// for after this and before every block (see "Waking only a sleeper"
    /// in `chan.rs`).
    pub(crate) fn announce_sleep(&self) {
        self.asleep.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Spins (an OS thread) or yields to the worker's other green threads
    /// (see `GREEN_YIELDS`) until `done`, briefly: whether `done` became
    /// true. Not a cancellation point.
    pub(crate) fn spin_until(done: impl Fn() -> bool) -> bool {
        if thread::in_green_thread() {
            for _ in 0..GREEN_YIELDS {
                if done() {
                    return true;
                }
                chan_cancel::yield_masked();
            }
            for _ in 0..ALONE_YIELDS {
                if done() {
                    return true;
                }
                if !thread::alone_on_worker() {
                    break;
                }
                chan_cancel::yield_masked();
            }
        } else {
            for _ in 0..OS_SPINS {
                if done() {
                    return true;
                }
                hint::spin_loop();
            }
        }
        done()
    }

    /// Leaves `packet` (an `Arc::into_raw` of a `Packet<T>`) for the owner.
    pub(crate) fn store_packet(&self, packet: *mut ()) {
        self.packet.store(packet, Ordering::Relaxed);
    }

    /// Takes the pointer left by `store_packet` (null if none).
    pub(crate) fn take_packet(&self) -> *mut () {
        self.packet.swap(std::ptr::null_mut(), Ordering::Relaxed)
    }

    /// Blocks until the outcome is decided, or until `deadline` or a
    /// cancellation, when it tries to decide `ABORTED` itself. Returns the
    /// outcome another party decided, or why the waiter aborted.
    ///
    /// A cancellation point (see "Cancellation" at the top of `chan.rs`):
    /// `Err(Abort::Cancelled)` or `Err(Abort::Unwinding)` means this
    /// waiter decided `ABORTED` because its thread is cancelled, so nobody
    /// selected it: the caller withdraws its entries and then raises (or,
    /// while unwinding, fails fast). If a counterpart decided first, the
    /// wait returns its outcome as usual and the cancellation stays
    /// pending for the next cancellation point (rule R2).
    ///
    /// Waits between checks; a stale wake or a spurious OS wakeup only
    /// costs one more check. No wakeup is lost: whoever decides the
    /// outcome does so before waking us, and a wait returns at once if
    /// that wake came before it.
    ///
    /// `why` is recorded for thread dumps once the wait stops yielding.
    pub(crate) fn wait_until(
        &self,
        deadline: Option<Instant>,
        why: WaitSite,
    ) -> Result<usize, Abort> {
        self.wait(deadline, true, why)
    }

    /// As `wait_until`, but not a cancellation point: for a wait that has
    /// no error to fail with while its thread unwinds (rule R1: a `select`
    /// or `ready` without deadline blocks as usual). Only `Abort::Deadline`
    /// can come back.
    pub(crate) fn wait_masked(
        &self,
        deadline: Option<Instant>,
        why: WaitSite,
    ) -> Result<usize, Abort> {
        self.wait(deadline, false, why)
    }

    fn wait(
        &self,
        deadline: Option<Instant>,
        cancellable: bool,
        why: WaitSite,
    ) -> Result<usize, Abort> {
        // Before waiting: a green thread yields (see `GREEN_YIELDS`); an OS
        // thread spins briefly, which helps when the counterpart runs on
        // another core. The yield is not a cancellation point: unwinding
        // from it would leave our entries registered. A thread that is
        // cancelled already skips this and gives up at once below.
        if cancellable && !matches!(chan_cancel::check(), Check::Continue) {
            // Straight to the loop, whose wait answers the cancellation.
        } else if Context::spin_until(|| self.state() != WAITING) {
            return Ok(self.state());
        }
        crate::loom::note_wait_at(why.reason, why.site);
        // From here a selector wakes us; the loop's first load re-checks.
        self.announce_sleep();
        loop {
            let state = self.state();
            if state != WAITING {
                return Ok(state);
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return self.abort(Abort::Deadline);
            }
            if !cancellable {
                match deadline {
                    None => thread::wait(),
                    Some(deadline) => thread::wait_until(deadline),
                }
                continue;
            }
            match chan_cancel::cancellable_wait(deadline) {
                Check::Continue => {}
                Check::Raise(cancelled) => return self.abort(Abort::Cancelled(cancelled)),
                Check::Unwinding => return self.abort(Abort::Unwinding),
            }
        }
    }

    /// The waiter gives up for `why`, unless a counterpart decided first:
    /// then its outcome stands (a cancellation stays pending, rule R2).
    fn abort(&self, why: Abort) -> Result<usize, Abort> {
        if self.try_select(ABORTED) {
            Err(why)
        } else {
            Ok(self.state())
        }
    }
}

/// What a channel or select waiter waits for and the call site of the
/// public blocking call, recorded for thread dumps.
#[derive(Clone, Copy)]
pub(crate) struct WaitSite {
    pub(crate) reason: WaitReason,
    pub(crate) site: &'static Location<'static>,
}

impl WaitSite {
    /// `reason`, at the call site of the `#[track_caller]` chain.
    #[inline]
    #[track_caller]
    pub(crate) fn here(reason: WaitReason) -> WaitSite {
        WaitSite {
            reason,
            site: Location::caller(),
        }
    }
}

/// Why a waiter decided `ABORTED` itself (`Context::wait_until`): nobody
/// selected it, so it withdraws its entries and reports this.
#[derive(Debug)]
pub(crate) enum Abort {
    /// The deadline (or a select's timer) passed.
    Deadline,
    /// The thread is cancelled: withdraw, then `raise` this.
    Cancelled(Cancelled),
    /// The thread is cancelled while already unwinding (rule R1):
    /// withdraw, then fail fast with the call's own error.
    Unwinding,
}

impl Abort {
    /// Unwinds with the cancellation if that is why the wait ended;
    /// otherwise returns, and the caller fails with its timeout error.
    /// Call it only once the entries are withdrawn.
    pub(crate) fn raise_if_cancelled(self) {
        if let Abort::Cancelled(cancelled) = self {
            chan_cancel::raise(cancelled);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    //! The select race: several parties try to decide one
    //! context; exactly one wins, and the waiter wakes with its outcome.
    use super::*;
    use ::loom::sync::atomic::AtomicUsize;
    use ::loom::thread;

    /// Two channels' selectors race to select operations 0 and 1 of one
    /// waiting select, and the waiter itself races them to `ABORTED` (its
    /// deadline path, called directly: loom has no time) if `aborts`.
    fn exactly_one_decides(aborts: bool) {
        ::loom::model(move || {
            let cx = Context::new();
            let wins = std::sync::Arc::new(AtomicUsize::new(0));
            // Each selector counts itself done here and unparks the
            // waiter, which waits for both so: a winner's `unpark` may come
            // after the waiter saw its decision and moved on (a spurious
            // wake to the engine), which loom's `join` would not tolerate.
            let done = std::sync::Arc::new(AtomicUsize::new(0));
            let main = thread::current();
            for k in 0..2 {
                let (cx, wins, done, main) = (cx.clone(), wins.clone(), done.clone(), main.clone());
                thread::spawn(move || {
                    if cx.try_select(FIRST_OPERATION + k) {
                        wins.fetch_add(1, Ordering::Relaxed);
                        cx.unpark();
                    }
                    done.fetch_add(1, Ordering::Release);
                    main.unpark();
                });
            }
            let outcome = if aborts && cx.try_select(ABORTED) {
                wins.fetch_add(1, Ordering::Relaxed);
                ABORTED
            } else {
                cx.wait_until(None, WaitSite::here(WaitReason::Select(2)))
                    .expect("no deadline and no cancellation")
            };
            while done.load(Ordering::Acquire) < 2 {
                thread::park();
            }
            assert_eq!(wins.load(Ordering::Relaxed), 1, "exactly one decides");
            assert_eq!(cx.state(), outcome, "the waiter sees the decision");
            assert!(outcome == ABORTED || outcome >= FIRST_OPERATION);
        });
    }

    #[test]
    fn two_selectors_one_winner() {
        exactly_one_decides(false);
    }

    #[test]
    fn two_selectors_and_an_abort_one_winner() {
        exactly_one_decides(true);
    }
}
