//! The results: one table on stdout and `results.json` (the chart is
//! `chart.rs`).
//!
//! Every figure is lower-is-better except rates (units ending in `/s`:
//! round trips/s, requests/s), where higher is better. spool's ratio is
//! its median over the best peer median in the row (the lowest, or the
//! highest for a rate): below 1 spool is ahead, or above 1 for a rate.
//!
//! A system without the primitive a scenario needs (tokio has no rendezvous
//! channel, Go no unbounded one, crossbeam-channel no mutex) has a
//! [`Cell::NotApplicable`]: `n/a` in the table with its reason in a note,
//! `{"not_applicable": reason}` in the JSON and the reason in the chart —
//! never a number, and never counted as the best peer.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::child::Outcome;
use crate::sys::Machine;
use crate::SYSTEMS;

/// One system's samples of one metric, or why it has none.
pub enum Cell {
    Values(Vec<f64>),
    Failed(String),
    Skipped(String),
    /// The system has no such primitive; the reason says what it lacks.
    NotApplicable(String),
}

impl Cell {
    pub fn empty() -> Cell {
        Cell::Values(Vec::new())
    }

    /// True once the cell failed or was skipped: no more samples are taken.
    pub fn is_final(&self) -> bool {
        !matches!(self, Cell::Values(_))
    }

    /// Adds `metric` from one child's outcome.
    pub fn record(&mut self, outcome: &Outcome, metric: &str) {
        *self = match (std::mem::replace(self, Cell::empty()), outcome) {
            (Cell::Values(mut v), Outcome::Measured(values)) => {
                match values.iter().find(|(m, _)| m == metric) {
                    Some((_, x)) => {
                        v.push(*x);
                        Cell::Values(v)
                    }
                    None => Cell::Failed(format!("the child did not report {metric}")),
                }
            }
            (Cell::Values(_), Outcome::Failed(why)) => Cell::Failed(why.clone()),
            (Cell::Values(_), Outcome::Skipped(why)) => Cell::Skipped(why.clone()),
            (Cell::Values(_), Outcome::NotApplicable(why)) => Cell::NotApplicable(why.clone()),
            (done, _) => done,
        }
    }

    /// (median, min, max) if there are samples: exact, from the few
    /// samples sorted (a histogram would only round them).
    pub fn stats(&self) -> Option<(f64, f64, f64)> {
        let Cell::Values(v) = self else { return None };
        if v.is_empty() {
            return None;
        }
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Some((median, v[0], v[v.len() - 1]))
    }
}

/// One row of the table: one metric of one scenario across the systems.
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub unit: String,
    pub note: Option<String>,
    /// In `SYSTEMS` order.
    pub cells: Vec<Cell>,
}

impl Row {
    /// True for a rate (a unit ending in `/s`), where higher is better.
    pub fn higher_is_better(&self) -> bool {
        self.unit.ends_with("/s")
    }

    /// spool's median over the best peer's, and that peer's name.
    pub fn ratio(&self) -> Option<(f64, &'static str)> {
        let (spool, _, _) = self.cells[0].stats()?;
        let peers = self.cells[1..]
            .iter()
            .zip(&SYSTEMS[1..])
            .filter_map(|(c, name)| c.stats().map(|(m, _, _)| (m, *name)));
        let (best, name) = if self.higher_is_better() {
            peers.max_by(|a, b| a.0.total_cmp(&b.0))?
        } else {
            peers.min_by(|a, b| a.0.total_cmp(&b.0))?
        };
        Some((spool / best, name))
    }

    /// The ratio column: `0.85x (go)`, with the direction for a rate.
    fn ratio_text(&self) -> Option<String> {
        let (ratio, best) = self.ratio()?;
        let higher = if self.higher_is_better() {
            ", higher is better"
        } else {
            ""
        };
        Some(format!("{ratio:.2}x ({best}){higher}"))
    }

    pub fn label(&self) -> String {
        format!("{} {}", self.scenario, self.unit)
    }
}

/// A figure with about four significant digits, no more than one decimal.
pub fn fmt(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn cell_text(cell: &Cell) -> String {
    match (cell, cell.stats()) {
        (_, Some((median, min, max))) => format!("{} ({}–{})", fmt(median), fmt(min), fmt(max)),
        (Cell::Failed(_), _) => "failed [e]".into(),
        (Cell::Skipped(_), _) => "skipped [e]".into(),
        (Cell::NotApplicable(_), _) => "n/a".into(),
        _ => "-".into(),
    }
}

pub fn print_table(rows: &[Row], mode: &str, machine: &Machine, elapsed: Duration) {
    println!(
        "spool vs peers ({mode} run, {:.0} s): median (min–max) over samples taken in rounds; lower is better except for rates (/s)",
        elapsed.as_secs_f64()
    );
    println!("machine: {}", machine.summary());
    println!(
        "load average (1, 5, 15 min) on {} cores: {}",
        machine.cores, machine.load
    );
    let label_width = rows
        .iter()
        .map(|r| r.label().chars().count())
        .max()
        .unwrap_or(8);
    let width = 22;
    let mut header = format!("{:<label_width$}", "scenario");
    for system in SYSTEMS {
        header += &format!(" | {system:<width$}");
    }
    header += " | spool / best peer";
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count()));
    for row in rows {
        let mut line = format!("{:<label_width$}", row.label());
        for cell in &row.cells {
            line += &format!(" | {:<width$}", cell_text(cell));
        }
        match row.ratio_text() {
            Some(text) => line += &format!(" | {text}"),
            None => line += " | -",
        }
        println!("{line}");
    }
    // A note shared by many rows (the channel matrix's) is said once.
    let mut shared: Vec<(&str, Vec<&str>)> = Vec::new();
    for row in rows {
        if let Some(note) = &row.note {
            match shared.iter_mut().find(|(n, _)| n == note) {
                Some((_, scenarios)) if scenarios.last() == Some(&row.scenario.as_str()) => {}
                Some((_, scenarios)) => scenarios.push(&row.scenario),
                None => shared.push((note, vec![&row.scenario])),
            }
        }
    }
    let mut notes: Vec<String> = shared
        .into_iter()
        .map(|(note, scenarios)| match scenarios.as_slice() {
            [one] => format!("{one}: {note}"),
            [first, .., last] => format!("{first} … {last} ({} rows): {note}", scenarios.len()),
            [] => unreachable!("a note without a row"),
        })
        .collect();
    for row in rows {
        for (cell, system) in row.cells.iter().zip(SYSTEMS) {
            // A skip (Go not installed) and a missing primitive are said
            // once per system and reason, a failure once per scenario.
            let line = match cell {
                Cell::Failed(why) => format!("[e] {system}, {}: failed: {why}", row.scenario),
                Cell::Skipped(why) => format!("[e] {system}: skipped: {why}"),
                Cell::NotApplicable(why) => format!("n/a {system}: {why}"),
                Cell::Values(_) => continue,
            };
            if !notes.contains(&line) {
                notes.push(line);
            }
        }
    }
    for note in notes {
        println!("{note}");
    }
}

/// `results.json`: the run's rows with every sample, written by
/// [`Results::write`] and read back by [`Results::read`] (`--report`).
///
/// ```text
/// {"mode": "full", "seconds": 494.8, "machine": {"cpu": ..., "cores": "2", ...},
///  "rows": [{"scenario": ..., "metric": ..., "unit": ..., "note": null,
///            "spool_ratio_to_best_peer": 0.16, "best_peer": "go", "higher_is_better": false,
///            "systems": {"spool": {"median": ..., "min": ..., "max": ..., "samples": [...]},
///                        "may": {"error": "..."}, "crossbeam": {"not_applicable": "..."}, ...}}]}
/// ```
///
/// The ratio, best peer and direction are derived from the samples: they
/// are written for readers of the file and recomputed when it is read.
#[derive(Serialize, Deserialize)]
pub struct Results {
    pub mode: String,
    /// The run's length, to a tenth of a second.
    pub seconds: f64,
    pub machine: MachineJson,
    pub rows: Vec<RowJson>,
}

/// The machine as `results.json` records it: every field a string, as
/// printed.
#[derive(Serialize, Deserialize)]
pub struct MachineJson {
    cpu: String,
    cores: String,
    memory_gib: String,
    kernel: String,
    vm_max_map_count: String,
    rustc: String,
    tokio: String,
    may: String,
    go: String,
    load_average_1_5_15_min: String,
}

/// One row of `results.json`.
#[derive(Serialize, Deserialize)]
pub struct RowJson {
    scenario: String,
    metric: String,
    unit: String,
    note: Option<String>,
    spool_ratio_to_best_peer: Option<f64>,
    best_peer: Option<String>,
    higher_is_better: bool,
    systems: Systems,
}

/// The cells of a row, one per system, keyed by the system's name and
/// written in `SYSTEMS` order.
struct Systems(Vec<Cell>);

impl Serialize for Systems {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(SYSTEMS.iter().zip(&self.0))
    }
}

impl<'de> Deserialize<'de> for Systems {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut by_name = BTreeMap::<String, Cell>::deserialize(deserializer)?;
        // A system the file does not have (an older run) is an empty cell.
        Ok(Systems(
            SYSTEMS
                .iter()
                .map(|s| by_name.remove(*s).unwrap_or_else(Cell::empty))
                .collect(),
        ))
    }
}

/// A [`Cell`] in `results.json`: its samples with their median, min and
/// max, or why it has none.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum CellJson {
    Values {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        median: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        /// A sample that is not a finite number is written as `null`
        /// (JSON has no NaN) and left out when read back.
        samples: Vec<Option<f64>>,
    },
    Error {
        error: String,
    },
    Skipped {
        skipped: String,
    },
    NotApplicable {
        not_applicable: String,
    },
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let json = match self {
            Cell::Values(v) => {
                let stats = self.stats();
                CellJson::Values {
                    median: stats.map(|(m, _, _)| m),
                    min: stats.map(|(_, lo, _)| lo),
                    max: stats.map(|(_, _, hi)| hi),
                    samples: v.iter().map(|x| x.is_finite().then_some(*x)).collect(),
                }
            }
            Cell::Failed(why) => CellJson::Error { error: why.clone() },
            Cell::Skipped(why) => CellJson::Skipped {
                skipped: why.clone(),
            },
            Cell::NotApplicable(why) => CellJson::NotApplicable {
                not_applicable: why.clone(),
            },
        };
        json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match CellJson::deserialize(deserializer)? {
            CellJson::Values { samples, .. } => {
                Cell::Values(samples.into_iter().flatten().collect())
            }
            CellJson::Error { error } => Cell::Failed(error),
            CellJson::Skipped { skipped } => Cell::Skipped(skipped),
            CellJson::NotApplicable { not_applicable } => Cell::NotApplicable(not_applicable),
        })
    }
}

impl Results {
    /// The results of a run.
    pub fn new(rows: Vec<Row>, mode: &str, machine: &Machine, elapsed: Duration) -> Results {
        Results {
            mode: mode.to_owned(),
            seconds: (elapsed.as_secs_f64() * 10.0).round() / 10.0,
            machine: MachineJson {
                cpu: machine.cpu.clone(),
                cores: machine.cores.to_string(),
                memory_gib: format!("{:.1}", machine.memory_gib),
                kernel: machine.kernel.clone(),
                vm_max_map_count: machine.max_map_count.clone(),
                rustc: machine.rustc.clone(),
                tokio: machine.tokio.clone(),
                may: machine.may.clone(),
                go: machine.go.clone(),
                load_average_1_5_15_min: machine.load.clone(),
            },
            rows: rows
                .into_iter()
                .map(|row| {
                    let ratio = row.ratio();
                    RowJson {
                        spool_ratio_to_best_peer: ratio.map(|(r, _)| r),
                        best_peer: ratio.map(|(_, best)| best.to_owned()),
                        higher_is_better: row.higher_is_better(),
                        scenario: row.scenario,
                        metric: row.metric,
                        unit: row.unit,
                        note: row.note,
                        systems: Systems(row.cells),
                    }
                })
                .collect(),
        }
    }

    /// Writes the results to `path`, pretty-printed.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| format!("cannot encode the results: {e}"))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Reads results written by [`Results::write`].
    pub fn read(path: &Path) -> Result<Results, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a results file of this benchmark: {e}",
                path.display()
            )
        })
    }

    /// The machine as recorded (numbers the file cannot hold read as 0).
    pub fn machine(&self) -> Machine {
        let m = &self.machine;
        Machine {
            cpu: m.cpu.clone(),
            cores: m.cores.parse().unwrap_or(0),
            memory_gib: m.memory_gib.parse().unwrap_or(0.0),
            kernel: m.kernel.clone(),
            rustc: m.rustc.clone(),
            go: m.go.clone(),
            tokio: m.tokio.clone(),
            may: m.may.clone(),
            max_map_count: m.vm_max_map_count.clone(),
            load: m.load_average_1_5_15_min.clone(),
        }
    }

    /// The rows, as the run collected them.
    pub fn rows(self) -> Vec<Row> {
        self.rows
            .into_iter()
            .map(|r| Row {
                scenario: r.scenario,
                metric: r.metric,
                unit: r.unit,
                note: r.note,
                cells: r.systems.0,
            })
            .collect()
    }

    /// The run's length.
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(self.seconds.max(0.0))
    }
}
