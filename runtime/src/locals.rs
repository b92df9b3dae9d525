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
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::scheduler;

/// A table of thread-local values, indexed by key slot.
#[derive(Default)]
pub struct LocalStorage {
    slots: Vec<Slot>,
}

/// One key's state in one thread.
#[derive(Default)]
enum Slot {
    /// Never initialised (or initialised by nobody yet).
    #[default]
    Empty,
    Alive(Box<dyn Any>),
    /// The thread is exiting and this value was destroyed (or is being):
    /// the key answers `AccessError`, as std's does, and cannot come back.
    Destroyed,
}

impl LocalStorage {
    pub(crate) fn new() -> LocalStorage {
        LocalStorage::default()
    }

    /// The value stored for `slot`, if any. The pointer stays valid until
    /// the slot is overwritten or its value destroyed.
    pub fn get(&self, slot: usize) -> Option<*const dyn Any> {
        match self.slots.get(slot)? {
            Slot::Alive(value) => Some(&**value as *const dyn Any),
            _ => None,
        }
    }

    /// Stores `value` for `slot`, returning the value it replaces (to be
    /// dropped by the caller *after* releasing the table). A slot whose
    /// value was destroyed refuses: `value` comes back as `Err`.
    ///
    /// # Safety
    /// No reference derived from a pointer `get` returned for `slot` may be
    /// in use: the replaced value is handed back to be dropped.
    pub unsafe fn insert(
        &mut self,
        slot: usize,
        value: Box<dyn Any>,
    ) -> Result<Option<Box<dyn Any>>, Box<dyn Any>> {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, Slot::default);
        }
        match std::mem::replace(&mut self.slots[slot], Slot::Alive(value)) {
            Slot::Empty => Ok(None),
            Slot::Alive(old) => Ok(Some(old)),
            Slot::Destroyed => match std::mem::replace(&mut self.slots[slot], Slot::Destroyed) {
                Slot::Alive(value) => Err(value),
                _ => unreachable!("spool::thread_local!: the value just stored is gone"),
            },
        }
    }

    /// Whether `slot`'s value was destroyed (the thread is exiting): the
    /// key then answers `AccessError`. Other keys may still be alive.
    pub fn is_destroyed(&self, slot: usize) -> bool {
        matches!(self.slots.get(slot), Some(Slot::Destroyed))
    }

    /// Takes the value of the last key still alive, marking its slot
    /// destroyed first (see "Destruction" at `destroy`).
    fn take_one_for_destruction(&mut self) -> Option<Box<dyn Any>> {
        let slot = self
            .slots
            .iter()
            .rposition(|s| matches!(s, Slot::Alive(_)))?;
        match std::mem::replace(&mut self.slots[slot], Slot::Destroyed) {
            Slot::Alive(value) => Some(value),
            _ => unreachable!("spool::thread_local!: rposition found a live slot"),
        }
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
        // While std destroys `OS_LOCALS` it answers no access, so the table
        // is reached through `OS_TEARDOWN` meanwhile: the destructors run by
        // `destroy` may use the keys not yet destroyed.
        OS_TEARDOWN.with(|t| t.set(&self.0));
        destroy(&self.0);
        OS_TEARDOWN.with(|t| t.set(std::ptr::null()));
    }
}

thread_local! {
    static OS_LOCALS: OsLocals = OsLocals(RefCell::new(LocalStorage::new()));
    /// The OS thread's table while `OsLocals::drop` destroys its values,
    /// else null. No destructor, so it stays accessible through the
    /// thread's whole exit.
    static OS_TEARDOWN: Cell<*const RefCell<LocalStorage>> = const { Cell::new(std::ptr::null()) };
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
    let mut f = Some(f);
    if let Ok(result) =
        OS_LOCALS.try_with(|l| (f.take().expect("f runs once"))(&mut l.0.borrow_mut()))
    {
        return Some(result);
    }
    let table = OS_TEARDOWN.with(Cell::get);
    if table.is_null() {
        return None;
    }
    // SAFETY: non-null only inside `OsLocals::drop` on this thread, whose
    // `self` (the table) lives until after the pointer is cleared.
    let table = unsafe { &*table };
    Some((f.take().expect("f runs once"))(&mut table.borrow_mut()))
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

/// Destruction, as std's: one key at a time, the most recently allocated
/// slot first. Each slot is marked destroyed before its value is dropped,
/// outside the table's borrow, so the destructor may use every key not yet
/// destroyed (and initialise keys never used before, whose values are then
/// destroyed in turn), while its own key and those already destroyed answer
/// `AccessError`. Ends: a slot is destroyed once and never comes back.
fn destroy(table: &RefCell<LocalStorage>) {
    loop {
        let value = table.borrow_mut().take_one_for_destruction();
        match value {
            Some(value) => drop(value),
            None => break,
        }
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
        assert!(unsafe { t.insert(3, Box::new(5u32)) }.unwrap().is_none());
        let p = t.get(3).unwrap();
        // SAFETY: the value lives in `t`, which is alive and unchanged.
        assert_eq!(unsafe { &*p }.downcast_ref::<u32>(), Some(&5));
        // SAFETY: the reference above is no longer used.
        let old = unsafe { t.insert(3, Box::new(6u32)) }.unwrap().unwrap();
        assert_eq!(old.downcast_ref::<u32>(), Some(&5));
    }

    #[test]
    fn destruction_marks_table() {
        let t = RefCell::new(LocalStorage::new());
        // SAFETY: no reference into the table exists.
        let _ = unsafe { t.borrow_mut().insert(0, Box::new(String::from("x"))) };
        destroy(&t);
        assert!(t.borrow().is_destroyed(0));
        assert!(
            !t.borrow().is_destroyed(1),
            "a key never used is not destroyed"
        );
        assert!(t.borrow().get(0).is_none());
        // SAFETY: no reference into the table exists.
        let refused = unsafe { t.borrow_mut().insert(0, Box::new(1u8)) };
        assert!(refused.is_err(), "a destroyed key cannot come back");
    }
}
