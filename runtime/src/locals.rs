//! Storage behind `spool::thread_local!`: one value per key per thread.
//!
//! `std::thread_local!` is per *OS* thread, which is wrong — and, for a `&T`
//! held across a switch, unsound — under green threads (see "Thread-local storage" in
//! `spool::thread`). spool's keys store their values in the green thread itself
//! (`Task::locals`), or, on a plain OS thread, in one std thread-local that
//! holds the same kind of table. Keys get a process-wide slot number the
//! first time they are used; a table is a vector indexed by slot.
//!
//! Values are boxed so their addresses stay put while the table grows: a
//! `&T` handed to `LocalKey::with` stays valid even if the closure touches
//! another key and the vector reallocates.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::scheduler;

/// A table of thread-local values, indexed by key slot.
#[derive(Default)]
pub struct LocalStorage {
    slots: Vec<Option<Box<dyn Any>>>,
    /// Set once destruction began: the thread is exiting and keys answer
    /// `AccessError`.
    destroyed: bool,
}

impl LocalStorage {
    pub(crate) fn new() -> LocalStorage {
        LocalStorage::default()
    }

    /// The value stored for `slot`, if any. The pointer stays valid until
    /// the slot is overwritten or the table is destroyed.
    pub fn get(&self, slot: usize) -> Option<*const dyn Any> {
        self.slots
            .get(slot)?
            .as_deref()
            .map(|v| v as *const dyn Any)
    }

    /// Stores `value` for `slot`, returning the value it replaces (to be
    /// dropped by the caller *after* releasing the table).
    ///
    /// # Safety
    /// No reference derived from a pointer `get` returned for `slot` may be
    /// in use: the replaced value is handed back to be dropped.
    pub unsafe fn insert(&mut self, slot: usize, value: Box<dyn Any>) -> Option<Box<dyn Any>> {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot].replace(value)
    }

    /// Whether the owning thread is exiting and its values are (being)
    /// destroyed.
    pub fn is_destroyed(&self) -> bool {
        self.destroyed
    }

    /// Marks the table destroyed and hands back the values, which the
    /// caller drops outside the borrow so their destructors may touch other
    /// keys (and get `AccessError`).
    fn take_for_destruction(&mut self) -> Vec<Option<Box<dyn Any>>> {
        self.destroyed = true;
        std::mem::take(&mut self.slots)
    }
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// Allocates a slot number for a new key.
pub fn new_local_slot() -> usize {
    // Relaxed: slot numbers need only be unique.
    NEXT_SLOT.fetch_add(1, Ordering::Relaxed)
}

/// The OS thread's table, for code not running in a green thread.
struct OsLocals(RefCell<LocalStorage>);

impl Drop for OsLocals {
    fn drop(&mut self) {
        destroy(&self.0);
    }
}

thread_local! {
    static OS_LOCALS: OsLocals = OsLocals(RefCell::new(LocalStorage::new()));
}

/// Runs `f` on the current thread's table: the running green thread's, or
/// the OS thread's. Returns `None` when the OS thread's table is already
/// gone (the OS thread is exiting).
///
/// # Panics
/// If called again from inside `f` (the table is a `RefCell`): `f` must not
/// run user code.
pub fn with_local_storage<R>(f: impl FnOnce(&mut LocalStorage) -> R) -> Option<R> {
    if let Some(task) = scheduler::current_task() {
        return Some(f(&mut task.locals.borrow_mut()));
    }
    OS_LOCALS.try_with(|l| f(&mut l.0.borrow_mut())).ok()
}

/// Destroys the running green thread's values (called when it exits, before
/// its `join` is released). Outside a green thread it does nothing: OS
/// threads destroy theirs when they exit.
///
/// # Safety
/// No reference into the current green thread's values (from pointers
/// `LocalStorage::get` returned) may be in use.
pub unsafe fn destroy_current_locals() {
    if let Some(task) = scheduler::current_task() {
        destroy(&task.locals);
    }
}

fn destroy(table: &RefCell<LocalStorage>) {
    // Destructors may create values for other keys (std allows that); loop
    // until nothing new appears. Values created after `destroyed` is set are
    // refused, so this ends.
    loop {
        let values = table.borrow_mut().take_for_destruction();
        if values.iter().all(Option::is_none) {
            break;
        }
        drop(values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_and_replace() {
        let mut t = LocalStorage::new();
        assert!(t.get(3).is_none());
        // SAFETY: no reference into the table is held across these calls.
        assert!(unsafe { t.insert(3, Box::new(5u32)) }.is_none());
        let p = t.get(3).unwrap();
        // SAFETY: the value lives in `t`, which is alive and unchanged.
        assert_eq!(unsafe { &*p }.downcast_ref::<u32>(), Some(&5));
        // SAFETY: the reference above is no longer used.
        let old = unsafe { t.insert(3, Box::new(6u32)) }.unwrap();
        assert_eq!(old.downcast_ref::<u32>(), Some(&5));
    }

    #[test]
    fn destruction_marks_table() {
        let t = RefCell::new(LocalStorage::new());
        // SAFETY: no reference into the table exists.
        unsafe { t.borrow_mut().insert(0, Box::new(String::from("x"))) };
        destroy(&t);
        assert!(t.borrow().is_destroyed());
        assert!(t.borrow().get(0).is_none());
    }
}
