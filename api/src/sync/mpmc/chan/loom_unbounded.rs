//! Models of unbounded (list) channels: the block list's claims, block
//! hand-over and free protocol (`list.rs`, two slots per block under loom,
//! so three messages cross a block boundary and its gate), and the
//! wake-up handshake of "Unbounded channels". Loom sees every message
//! access (the slots' cells are loom's), and `Block::free` touches every
//! slot under loom, so a free that is not ordered after a reader's last
//! access is reported as a race.
use super::*;
use ::loom::sync::atomic::AtomicBool;
use ::loom::thread;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

/// Runs `f` on a second thread; the returned closure waits for it,
/// tolerating a late `unpark` from the channel (as in `loom_models.rs`).
fn spawn(f: impl FnOnce() + 'static) -> impl FnOnce() {
    let done = Arc::new(AtomicBool::new(false));
    let main = thread::current();
    {
        let done = done.clone();
        thread::spawn(move || {
            f();
            done.store(true, Ordering::Release);
            main.unpark();
        });
    }
    move || {
        while !done.load(Ordering::Acquire) {
            thread::park();
        }
    }
}

/// `loom::model` with a preemption bound (as in `loom_models.rs`), and
/// room for the longer executions of three messages and a block switch.
fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = ::loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.max_branches = 10_000;
    builder.check(f);
}

#[test]
fn list_two_senders_one_receiver_across_a_block_boundary() {
    // Sender A sends 1 then 2, sender B sends 10: three messages, so the
    // first block's two slots fill and a sender installs the second block
    // while the other may be claiming; the receiver takes all three with
    // blocking receives, each exactly once, each sender's in order. Three
    // threads spinning on each other's steps: one preemption per execution
    // (two take over five minutes).
    model(1, || {
        let chan = Arc::new(Chan::<u32>::new(UNBOUNDED));
        let a = {
            let chan = chan.clone();
            spawn(move || {
                chan.send(1, None).unwrap();
                chan.send(2, None).unwrap();
            })
        };
        let b = {
            let chan = chan.clone();
            spawn(move || chan.send(10, None).unwrap())
        };
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(chan.recv(None).unwrap());
        }
        a();
        b();
        let from_a: Vec<u32> = got.iter().copied().filter(|&m| m < 10).collect();
        assert_eq!(from_a, [1, 2], "sender A's messages in order, once each");
        assert_eq!(got.iter().filter(|&&m| m == 10).count(), 1);
        assert!(matches!(chan.try_recv(), Err(TryRecvError::Empty)));
        assert_eq!(chan.len(), 0);
    });
}

#[test]
fn list_blocked_receiver_is_woken() {
    // The receiver finds the list empty and registers while the sends
    // happen (the second and third cross into a new block): either a
    // send's `SeqCst` load sees the published waiter, or the receiver's
    // re-check after its fence sees the claim. A lost wakeup leaves the
    // receiver parked, which loom reports as a deadlock.
    model(3, || {
        let chan = Arc::new(Chan::<u32>::new(UNBOUNDED));
        let join = {
            let chan = chan.clone();
            spawn(move || {
                for i in 1..=3 {
                    chan.send(i, None).unwrap();
                }
            })
        };
        for i in 1..=3 {
            assert_eq!(chan.recv(None).unwrap(), i);
        }
        join();
        let inner = chan.lock();
        assert!(inner.receivers.0.is_empty());
    });
}

/// A message that records its drop, once.
struct Counted {
    id: usize,
    drops: Arc<[StdAtomicUsize; 4]>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        // Std atomics: bookkeeping, outside what loom explores (loom runs
        // one thread at a time).
        self.drops[self.id].fetch_add(1, StdOrdering::SeqCst);
    }
}

#[test]
fn list_disconnect_during_a_send_drops_every_message_once() {
    // A sender sends three messages (crossing into the second block) while
    // the receiver takes one and then leaves, discarding what is queued
    // (waiting for a send that claimed before the mark). Every message is
    // dropped exactly once: received and dropped by the receiver,
    // discarded, returned by a failed send, or dropped with the channel;
    // the blocks are freed on the way (loom checks the frees' ordering).
    model(2, || {
        let drops = Arc::new([const { StdAtomicUsize::new(0) }; 4]);
        let chan = Arc::new(Chan::<Counted>::new(UNBOUNDED));
        let join = {
            let (chan, drops) = (chan.clone(), drops.clone());
            spawn(move || {
                for id in 1..=3 {
                    let msg = Counted {
                        id,
                        drops: drops.clone(),
                    };
                    if let Err(SendTimeoutError::Disconnected(msg)) = chan.send(msg, None) {
                        drop(msg);
                    }
                }
            })
        };
        if let Ok(msg) = chan.try_recv() {
            assert_eq!(msg.id, 1);
        }
        chan.remove_receiver();
        join();
        drop(chan);
        for id in 1..=3 {
            assert_eq!(
                drops[id].load(StdOrdering::SeqCst),
                1,
                "message {id} dropped once"
            );
        }
    });
}

#[test]
fn list_receivers_race_over_a_block_they_both_read() {
    // Two receivers take the two slots of the first block concurrently:
    // the reader of the last slot starts the block's destruction while
    // the other may still be reading (the `DESTROY`/`READ` hand-off);
    // one of them frees it, after both reads.
    model(3, || {
        let chan = Arc::new(Chan::<u32>::new(UNBOUNDED));
        for i in 1..=3 {
            chan.try_send(i).unwrap();
        }
        let other = {
            let chan = chan.clone();
            let got = Arc::new(Mutex::new(None));
            let join = {
                let got = got.clone();
                spawn(move || *lock(&got) = chan.try_recv().ok())
            };
            move || {
                join();
                let got = lock(&got).take();
                got
            }
        };
        let mine = chan.try_recv().ok();
        let theirs = other();
        let mut got: Vec<u32> = mine.into_iter().chain(theirs).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert_eq!(chan.try_recv().ok(), Some(3));
    });
}
