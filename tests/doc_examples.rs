//! Counts the public items of `spool` whose docs carry a runnable example,
//! and fails below [`THRESHOLD`], naming every item that has none.
//!
//! The count reads the sources (`api/src`, and `runtime/src` for the items
//! `spool` re-exports from the engine) with a small Rust tokenizer and item
//! parser, so it runs on stable in a plain `cargo test`, and formatting does
//! not matter: multi-line signatures, attributes between the docs and the
//! item, `#[doc = "…"]` attributes, items inside macro invocations (such as
//! `const_fn! { pub fn new … }`) and exported `macro_rules!` are all seen.
//!
//! # What counts as public
//! * An item declared `pub` (not `pub(crate)`, `pub(super)`, `pub(in …)`) in
//!   a module reachable from the crate root through `pub mod`s, or named by
//!   a `pub use` (including globs) in such a module, however many re-exports
//!   deep, in `spool` or in `spool-runtime`. Each item counts once, at its
//!   definition; re-exports of std's items are std's and do not count.
//! * `#[macro_export]` macros live at the crate root (and count when
//!   reachable, e.g. re-exported under another name).
//! * The `pub` methods of inherent impls of a public type, wherever the impl
//!   is (also in a private module), the fields declared `pub` of a public
//!   struct, every variant of a public enum, and every item of a public
//!   trait. Items of trait impls do not count (their docs are the trait's).
//! * `#[doc(hidden)]` on an item, impl or re-export hides it. Items under a
//!   `#[cfg]` that is false for `cargo doc` on Linux without features
//!   (`test`, `loom`, `feature = …`, other platforms) do not exist.
//!
//! # What counts as an example, and which items need one
//! As rustdoc's `--show-coverage`: an example is a fenced code block whose
//! language is Rust (none, `rust`, or only doctest flags such as `no_run`,
//! `should_panic`, `compile_fail`), not `ignore`. Functions, methods,
//! structs, enums, unions, traits and macros need one; modules, constants,
//! statics, type aliases, fields, variants and associated types and
//! constants count only when they have one (both as an item and as covered).
//!
//! rustdoc's own count (`cargo +nightly rustdoc -p spool-rt -- -Z
//! unstable-options --show-coverage`) sees less, by three blind spots: it
//! skips the methods of impls written in private modules (`sync::Mutex`'s
//! impls live in the private `sync::mutex`), the engine items `spool`
//! re-exports, and it expects no example of an item re-exported from a
//! private module (it counts one only when it has an example). A report
//! reproduces its figures file by file beside this count; run with
//! `DOC_EXAMPLES_REPORT=1 cargo test --test doc_examples -- --nocapture` to print
//! both counts per file.

#[path = "doc_examples/crates.rs"]
mod crates;
#[path = "doc_examples/items.rs"]
mod items;
#[path = "doc_examples/tokens.rs"]
mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crates::{Global, World};
use items::{Crate, Kind};

/// The share of counted items that must have an example.
const THRESHOLD: f64 = 0.90;

#[test]
fn public_items_have_examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &Path| std::fs::read_to_string(root.join(p)).ok();
    let api = Crate::load("spool", Path::new("api/src/lib.rs"), &read);
    let engine = Crate::load("spool_runtime", Path::new("runtime/src/lib.rs"), &read);
    let world = World::new(vec![api, engine]);
    let counted = world.public_items(0);
    let tally = Tally::of(&world, &counted);
    if std::env::var_os("DOC_EXAMPLES_REPORT").is_some() {
        tally.print_report();
    }
    let share = tally.covered as f64 / tally.total as f64;
    if share < THRESHOLD {
        let mut msg = format!(
            "{} of {} public items ({:.1}%) have a runnable example; at least {:.0}% must.\n\
             Items without one:\n",
            tally.covered,
            tally.total,
            share * 100.0,
            THRESHOLD * 100.0
        );
        for m in &tally.missing {
            msg.push_str(&format!("  {m}\n"));
        }
        panic!("{msg}");
    }
}

/// The counter itself, on a small crate written to trip it up.
#[test]
fn counter_sees_through_formatting() {
    let files: HashMap<PathBuf, &str> = [
        (
            "lib.rs",
            r#"
//! Crate docs.
pub mod shown;
mod hidden_impls;
mod private;
pub use private::{Reexported, reexported_fn as renamed};
pub use private::globbed::*;
pub use std::sync::Arc;

/// Documented
/// ```
/// assert!(true);
/// ```
#[inline]
#[allow(clippy::all)]
pub
fn multi_line<T>(
    t: T,
) -> T
where
    T: Clone,
{ t }

/// No example, but text only:
/// ```text
/// not rust
/// ```
pub fn text_only() {}

/// Ignored:
/// ```ignore
/// x
/// ```
pub fn ignored() {}

#[doc = "```"]
#[doc = "let x = 1;"]
#[doc = "```"]
pub fn doc_attrs() {}

/// ```
/// ```
#[macro_export]
macro_rules! exported { () => {} }

macro_rules! not_exported { () => {} }

#[doc(hidden)]
pub fn hidden() {}

pub(crate) fn crate_only() {}

#[cfg(test)]
pub fn only_in_tests() {}
"#,
        ),
        (
            "shown.rs",
            r#"
/// ```
/// ```
pub struct Shown { pub field: u8, private: u8 }
impl Shown {
    /// ```
    /// ```
    pub const fn new() -> Self { Shown { field: 0, private: 0 } }
    pub fn no_example(&self) {}
    fn private(&self) {}
}
impl Clone for Shown { fn clone(&self) -> Self { todo!() } }
/// ```no_run
/// ```
pub enum E { A, B(u8), C { x: u8 } }
pub trait Tr { fn required(&self); /// ```
/// ```
fn provided(&self) {} }
"#,
        ),
        (
            "private.rs",
            r#"
pub mod globbed { pub struct G; }
/// ```should_panic
/// panic!()
/// ```
pub struct Reexported;
pub fn reexported_fn() {}
pub struct NotReexported;
"#,
        ),
        (
            "hidden_impls.rs",
            r#"
use crate::private::Reexported;
impl Reexported {
    my_macro! {
        /// ```
        /// ```
        pub fn in_macro() {}
    }
    pub fn bare() {}
}
impl crate::shown::Shown { pub fn elsewhere() {} }
"#,
        ),
    ]
    .into_iter()
    .map(|(p, s)| (PathBuf::from(p), s))
    .collect();
    let read = |p: &Path| files.get(p).map(|s| s.to_string());
    let krate = Crate::load("spool", Path::new("lib.rs"), &read);
    let world = World::new(vec![krate]);
    let tally = Tally::of(&world, &world.public_items(0));
    let mut names: Vec<String> = tally.rows.iter().map(|r| r.describe()).collect();
    names.sort();
    let expected = [
        "fn doc_attrs: example",
        "fn ignored: none",
        "fn multi_line: example",
        "fn reexported_fn: none",
        "fn text_only: none",
        "macro exported: example",
        "method Reexported::bare: none",
        "method Reexported::in_macro: example",
        "method Shown::elsewhere: none",
        "method Shown::new: example",
        "method Shown::no_example: none",
        "method Tr::provided: example",
        "method Tr::required: none",
        "mod spool: none",
        "struct G: none",
        "struct Reexported: example",
        "struct Shown: example",
        "enum E: example",
        "field Shown::field: none",
        "mod shown: none",
        "trait Tr: none",
        "variant E::A: none",
        "variant E::B: none",
        "variant E::C: none",
    ];
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected);
    // Needing an example: 5 fns, 1 macro, 7 methods, 3 structs, 1 enum, 1 trait.
    assert_eq!((tally.total, tally.covered), (18, 9));
}

// ---------------------------------------------------------------------------
// Counting

/// How rustdoc's `--show-coverage` counts an item (for the report only).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Seen {
    /// Declared in a module reachable through `pub mod`s (and, for a
    /// method, its impl too): counted as here.
    Direct,
    /// Re-exported from a private module: rustdoc expects no example of it,
    /// so counts it only when it has one.
    Inlined,
    /// Not counted: an engine item, or a method of an impl in a private
    /// module.
    Not,
}

struct Row {
    kind: Kind,
    name: String,
    owner: Option<String>,
    example: bool,
    file: PathBuf,
    line: usize,
    rustdoc: Seen,
}

impl Row {
    fn describe(&self) -> String {
        let name = match &self.owner {
            Some(o) => format!("{o}::{}", self.name),
            None => self.name.clone(),
        };
        format!(
            "{} {name}: {}",
            self.kind.word(),
            if self.example { "example" } else { "none" }
        )
    }
}

struct Tally {
    rows: Vec<Row>,
    total: usize,
    covered: usize,
    missing: Vec<String>,
}

impl Tally {
    fn of(world: &World, items: &BTreeMap<Global, Seen>) -> Tally {
        let mut rows: Vec<Row> = items
            .iter()
            .map(|(&g, &rustdoc)| {
                let d = world.def(g);
                Row {
                    kind: d.kind,
                    name: d.name.clone(),
                    owner: d.owner.clone(),
                    example: d.example,
                    file: d.file.clone(),
                    line: d.line,
                    rustdoc,
                }
            })
            .collect();
        rows.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        let counted: Vec<&Row> = rows
            .iter()
            .filter(|r| r.kind.needs_example() || r.example)
            .collect();
        let total = counted.len();
        let covered = counted.iter().filter(|r| r.example).count();
        let missing = counted
            .iter()
            .filter(|r| !r.example)
            .map(|r| {
                format!(
                    "{}:{} {}",
                    r.file.display(),
                    r.line,
                    r.describe().trim_end_matches(": none")
                )
            })
            .collect();
        Tally {
            rows,
            total,
            covered,
            missing,
        }
    }

    fn print_report(&self) {
        let mut files: BTreeMap<&Path, [usize; 4]> = BTreeMap::new();
        for r in self
            .rows
            .iter()
            .filter(|r| r.kind.needs_example() || r.example)
        {
            let e = files.entry(&r.file).or_default();
            e[0] += 1;
            e[1] += usize::from(r.example);
            if r.rustdoc == Seen::Direct || r.rustdoc == Seen::Inlined && r.example {
                e[2] += 1;
                e[3] += usize::from(r.example);
            }
        }
        println!(
            "{:<40} {:>15} {:>15}",
            "file", "examples/items", "rustdoc's view"
        );
        let mut sum = [0; 4];
        for (f, c) in &files {
            println!(
                "{:<40} {:>7}/{:<7} {:>7}/{:<7}",
                f.display(),
                c[1],
                c[0],
                c[3],
                c[2]
            );
            for k in 0..4 {
                sum[k] += c[k];
            }
        }
        println!(
            "{:<40} {:>7}/{:<7} {:>7}/{:<7}",
            "total", sum[1], sum[0], sum[3], sum[2]
        );
    }
}
