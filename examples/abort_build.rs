//! What cancellation does when the program cannot unwind.
//!
//! ```text
//! cargo run --profile abort --example abort_build   # panic = "abort": cooperative
//! cargo run --example abort_build                    # the usual build: unwinding
//! ```
//!
//! With `panic = "abort"` nothing can unwind, so a cancelled blocking call
//! cannot leave its block of code: it returns early or fails with its own
//! error, and the code around it decides what to do. The program checks the
//! behaviour of each build and exits with an error if it differs.

use spool::cancel::{is_cancelled, CancelScope};
use spool::net::{TcpListener, TcpStream};
use std::io::Read;
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let abort = cfg!(panic = "abort");
    println!(
        "built with panic = \"{}\": cancellation is {}",
        if abort { "abort" } else { "unwind" },
        if abort { "cooperative" } else { "unwinding" }
    );
    let short = Duration::from_millis(20);

    // A receive nobody answers, with a timeout around it.
    let (_tx, rx) = spool::sync::mpsc::channel::<u32>();
    let start = Instant::now();
    let received = spool::time::timeout(short, || rx.recv());
    println!(
        "timeout around recv:  {received:?} after {:?}",
        start.elapsed()
    );
    if abort {
        assert!(
            matches!(received, Ok(Err(_))),
            "the receive fails: {received:?}"
        );
    } else {
        assert!(received.is_err(), "the timeout elapses: {received:?}");
    }

    // A read from a peer that never writes.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut stream = TcpStream::connect(listener.local_addr()?)?;
    let (_silent, _) = listener.accept()?;
    let mut buf = [0; 16];
    let read = spool::time::timeout(short, || stream.read(&mut buf));
    println!("timeout around read:  {read:?}");
    match &read {
        Ok(Err(e)) if abort => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
        Err(_) if !abort => {}
        other => panic!("unexpected: {other:?}"),
    }

    // A long sleep ends at the deadline either way.
    let start = Instant::now();
    let slept = spool::time::timeout(short, || spool::thread::sleep(Duration::from_secs(60)));
    println!(
        "timeout around sleep: {slept:?} after {:?}",
        start.elapsed()
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(slept.is_ok(), abort);

    // A worker that cooperates: it checks `is_cancelled` between jobs.
    let worker = spool::thread::spawn(|| {
        let mut rounds = 0u32;
        while !is_cancelled() {
            spool::thread::sleep(Duration::from_millis(1));
            rounds += 1;
        }
        rounds
    });
    spool::thread::sleep(short);
    worker.cancel();
    let joined = worker.join();
    println!(
        "cancelled worker:     {}",
        match &joined {
            Ok(rounds) => format!("returned after {rounds} rounds"),
            Err(_) => "unwound".to_string(),
        }
    );
    assert_eq!(joined.is_ok(), abort);

    // A cancelled scope: `checkpoint` unwinds only where unwinding exists.
    let scope = CancelScope::new();
    scope.cancel();
    let ran = scope.run(|| {
        spool::cancel::checkpoint();
        is_cancelled()
    });
    println!("checkpoint in a cancelled scope: {ran:?}");
    assert_eq!(ran, if abort { Some(true) } else { None });

    // A task group: a child's failure cancels its blocked sibling and the
    // body. Where cancellation is cooperative their receives fail instead
    // of unwinding, and those errors are the cancellation, not failures.
    let (_sibling_tx, sibling_rx) = spool::sync::mpsc::channel::<u32>();
    let (_body_tx, body_rx) = spool::sync::mpsc::channel::<u32>();
    let grouped = spool::group(|g| {
        g.spawn(move || {
            sibling_rx
                .recv()
                .map_err(|_| "the sibling's receive failed")
        });
        g.spawn(|| {
            spool::thread::sleep(Duration::from_millis(5));
            Err::<u32, _>("boom")
        });
        body_rx.recv().map_err(|_| "the body's receive failed")
    });
    println!("group with a failing child: {grouped:?}");
    let failures: Vec<&str> = match &grouped {
        Err(e) => e.iter().map(|f| *f.error()).collect(),
        Ok(_) => Vec::new(),
    };
    assert_eq!(failures, ["boom"], "only the child's own failure counts");
    println!("ok");
    Ok(())
}
