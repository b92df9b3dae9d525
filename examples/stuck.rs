//! A program that deadlocks on purpose, to show spool's deadlock report.
//!
//! ```text
//! cargo run --example stuck     # prints the report, exits with status 2
//! ```
//!
//! Two green threads move money between two accounts, each locking the
//! account it takes from first and then the other: the classic lock-order
//! inversion. Each ends up holding one lock and waiting for the other,
//! while `main` waits for both. Nothing can wake anyone: spool notices
//! (every thread parked, no timer, no socket, no blocking job, no other OS
//! thread running), prints
//!
//! ```text
//! spool: all threads are parked and nothing can wake them — deadlock (and 1 OS thread waiting in a spool call)
//! ```
//!
//! and a dump of every green thread — what each waits for and where it
//! blocked — and, because this runtime is built with
//! `DeadlockMode::Fatal`, exits with status 2 as Go does. With the default
//! mode it would print the same and keep waiting.

use spool::debug::DeadlockMode;
use spool::sync::{Arc, Barrier, Mutex};
use spool::thread;

fn transfer(name: &str, from: Arc<Mutex<u64>>, to: Arc<Mutex<u64>>, both_locked_one: Arc<Barrier>) {
    let mut source = from.lock().unwrap();
    // Both threads hold their first lock before either asks for its second.
    both_locked_one.wait();
    let mut target = to.lock().unwrap(); // never returns: the other holds it
    *source -= 10;
    *target += 10;
    println!("{name}: moved 10");
}

fn main() {
    spool::Runtime::builder()
        .deadlock(DeadlockMode::Fatal)
        .build_global()
        .expect("the runtime starts");
    let checking = Arc::new(Mutex::new(100));
    let savings = Arc::new(Mutex::new(100));
    let barrier = Arc::new(Barrier::new(2));
    println!("stuck: two transfers lock two accounts in opposite orders…");
    let to_savings = {
        let (from, to, barrier) = (checking.clone(), savings.clone(), barrier.clone());
        thread::Builder::new()
            .name("to-savings".into())
            .spawn(move || transfer("to-savings", from, to, barrier))
            .unwrap()
    };
    let to_checking = thread::Builder::new()
        .name("to-checking".into())
        .spawn(move || transfer("to-checking", savings, checking, barrier))
        .unwrap();
    to_savings.join().unwrap();
    to_checking.join().unwrap();
    println!("stuck: done (this line is never reached)");
}
