//! With the `tracing` feature, `tracing` output names the green thread that
//! logged (`green_thread{id=… name=…}`), not its worker — also when green
//! threads interleave on one worker. Run with
//! `cargo test --features tracing --test tracing_names`.
#![cfg(feature = "tracing")]

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A `MakeWriter` that appends to a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

#[test]
fn events_name_the_green_thread_that_emitted_them() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .with_thread_names(true)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let rt = spool::Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        // Two green threads take turns on one worker: each event must be
        // inside its own thread's span, never the other's.
        let threads: Vec<_> = ["alpha", "beta"]
            .into_iter()
            .map(|name| {
                spool::thread::Builder::new()
                    .name(name.to_string())
                    .spawn(move || {
                        for round in 0..3 {
                            tracing::info!(round, "hello from {name}");
                            spool::thread::yield_now();
                        }
                    })
                    .unwrap()
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("hello from")).collect();
    assert_eq!(lines.len(), 6, "{text}");
    for line in lines {
        let name = if line.contains("hello from alpha") {
            "alpha"
        } else {
            "beta"
        };
        assert!(
            line.contains("green_thread{id=") && line.contains(&format!("name=\"{name}\"")),
            "the event is not inside its own green thread's span: {line}"
        );
        let other = if name == "alpha" { "beta" } else { "alpha" };
        assert!(!line.contains(&format!("name=\"{other}\"")), "{line}");
    }
}
