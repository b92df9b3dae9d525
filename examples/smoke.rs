use spool::thread;
use std::time::{Duration, Instant};
fn main() {
    let h = thread::spawn(|| 1 + 1);
    println!("join -> {:?}", h.join().unwrap());
    let t0 = Instant::now();
    let hs: Vec<_> = (0..100_000).map(|i| thread::spawn(move || i)).collect();
    let s: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    println!("100k spawn/join sum={s} in {:?}", t0.elapsed());
    let t0 = Instant::now();
    thread::spawn(|| thread::sleep(Duration::from_millis(20))).join().unwrap();
    println!("sleep 20ms took {:?}", t0.elapsed());
    let r = thread::Builder::new().name("boom".into()).spawn(|| panic!("oops")).unwrap().join();
    println!("panic join is_err={}", r.is_err());
    let v = spool::run(|| {
        let hs: Vec<_> = (0..1000).map(|i| thread::spawn(move || { thread::yield_now(); i })).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
    });
    println!("run -> {v}");
    let mut x = vec![1,2,3];
    thread::scope(|s| { s.spawn(|| x.push(4)); });
    println!("scope -> {x:?}");
}
